"""Route 53 private hosted zones answering over a registry's live state (no Cloud Map API)."""

from __future__ import annotations

import random

from fargo.local.cloudmap.route53 import (
    SOA_TTL,
    ARecord,
    DiscoveryService,
    PrivateHostedZones,
    ResourceRecord,
    ServiceInstance,
)


def zones() -> tuple[PrivateHostedZones, dict[str, dict[str, DiscoveryService]]]:
    namespaces: dict[str, dict[str, DiscoveryService]] = {"microservice.local": {}}
    records = {"public.elb.fargo.internal": ARecord("127.0.0.1", 60)}
    return PrivateHostedZones(namespaces, records, rng=random.Random(1)), namespaces


def test_zones_are_the_namespaces_and_the_parents_of_plain_records() -> None:
    hosted, _ = zones()
    assert hosted.zones() == ["elb.fargo.internal", "microservice.local"]
    assert hosted.record_zone("lb.microservice.local") == "microservice.local"


def test_answers_follow_the_live_state() -> None:
    hosted, namespaces = zones()
    assert hosted.answer("api.microservice.local", "A").rcode == "NXDOMAIN"
    service = DiscoveryService(60, frozenset({"A"}), "MULTIVALUE")
    namespaces["microservice.local"]["api"] = service
    service.instances["t1"] = ServiceInstance("127.0.1.1", 80, {})
    answer = hosted.answer("API.microservice.local.", "a")
    assert answer.answer == (ResourceRecord("API.microservice.local.", "A", 60, "127.0.1.1"),)


def test_outside_every_zone_is_refused_and_nodata_carries_the_soa() -> None:
    hosted, _ = zones()
    refused = hosted.answer("example.com", "A")
    assert (refused.rcode, refused.authoritative) == ("REFUSED", False)
    nodata = hosted.answer("public.elb.fargo.internal", "SRV")
    assert nodata.rcode == "NOERROR" and nodata.answer == ()
    assert [(r.type, r.ttl) for r in nodata.authority] == [("SOA", SOA_TTL)]
