"""Route 53 private hosted zones as Cloud Map fills them: the DNS answers, as pure state.

    zones = PrivateHostedZones(namespaces, records, rng=random.Random())
    zones.zones()  # ["elb.fargo.internal", "microservice.local"]
    zones.answer("private.backend.microservice.local", "A")
    # Answer(rcode='NOERROR', answer=(ResourceRecord(name='private.backend.microservice.local.',
    #        type='A', ttl=60, value='127.0.1.1'),), authority=())

`fargo.local.cloudmap.registry` keeps the registry (namespaces, services, instances, plain
A records) and hands its live state to this class; :mod:`fargo.local.cloudmap.dns_server` puts the
answers on the wire.

Route 53 behaviour kept here: MULTIVALUE answers hold up to 8 healthy records
in random order, or up to 8 unhealthy ones when none is healthy; WEIGHTED
answers (equal weights) hold one random healthy record, or one of all when none
is healthy. A service with SRV records answers ``1 1 <port> <instance>.<service>.<namespace>.``
and an A record for that target. Unknown names inside a zone are NXDOMAIN with
the zone's SOA; known names without the asked type are NODATA; names outside
every zone are REFUSED, as from an authoritative-only server. A service without record
types (API calls only) has no DNS name.

A Service Connect client alias is the twin's own addition (on AWS the proxy answers it,
never DNS): the alias is a zone of its own whose apex answers A records of its service's
instances, routed as that service routes (MULTIVALUE: healthy ones, or all when none is,
as Envoy routes to every host when too few are healthy).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from fargo.spec.defaults import MULTIVALUE_MAX_RECORDS

RoutingPolicy: TypeAlias = Literal["MULTIVALUE", "WEIGHTED"]
InstanceHealthStatus: TypeAlias = Literal["HEALTHY", "UNHEALTHY"]
Rcode: TypeAlias = Literal["NOERROR", "NXDOMAIN", "REFUSED"]

# Cloud Map fills SRV priority and weight with 1.
SRV_PRIORITY = 1
SRV_WEIGHT = 1
# What a Route 53 hosted zone answers at its apex; the SOA TTL (900 s) also
# bounds negative caching (RFC 2308: min(SOA TTL, SOA MINIMUM)).
SOA_TTL = 900
SOA_VALUE = "ns-0.awsdns-00.com. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400"
NS_TTL = 172_800
NS_VALUES = ("ns-0.awsdns-00.com.",)


@dataclass(frozen=True)
class ResourceRecord:
    """One DNS record: absolute owner name, type, TTL and presentation-format value."""

    name: str
    type: str
    ttl: int
    value: str


@dataclass(frozen=True)
class Answer:
    """What an authoritative server answers for one question."""

    rcode: Rcode
    answer: tuple[ResourceRecord, ...] = ()
    authority: tuple[ResourceRecord, ...] = ()

    @property
    def authoritative(self) -> bool:
        return self.rcode != "REFUSED"


@dataclass
class ServiceInstance:
    """A registered instance: the records of its service point at it."""

    ipv4: str
    port: int
    attributes: dict[str, str]
    health_status: InstanceHealthStatus = "HEALTHY"


@dataclass
class DiscoveryService:
    """A Cloud Map service's DNS configuration and its instances, by instance id."""

    ttl: int
    record_types: frozenset[str]
    routing_policy: RoutingPolicy
    instances: dict[str, ServiceInstance] = field(default_factory=dict)


@dataclass
class ARecord:
    """A plain A record outside Cloud Map (e.g. a load balancer's name)."""

    ipv4: str
    ttl: int


class PrivateHostedZones:
    """The zones of the namespaces and of the plain records, answering as Route 53 does.

    ``namespaces`` (namespace → service name → service) and ``records`` (name →
    record) are the registry's live state, read at every answer.
    """

    def __init__(
        self,
        namespaces: Mapping[str, Mapping[str, DiscoveryService]],
        records: Mapping[str, ARecord],
        *,
        rng: random.Random,
        aliases: Mapping[str, DiscoveryService] | None = None,
    ) -> None:
        self._namespaces = namespaces
        self._records = records
        self._rng = rng
        self._aliases = aliases if aliases is not None else {}

    def zones(self) -> list[str]:
        """Every zone: the namespaces, the zones of plain records, the client aliases."""
        found = set(self._namespaces)
        found.update(self.record_zone(name) for name in self._records)
        found.update(self._aliases)
        return sorted(found)

    def record_zone(self, name: str) -> str:
        """The zone of a plain record: the namespace containing it, else its parent domain."""
        inside = [ns for ns in self._namespaces if within(name, ns)]
        if inside:
            return max(inside, key=len)
        _, _, parent = name.partition(".")
        return parent or name

    def answer(self, qname: str, qtype: str) -> Answer:
        """Answer one question as Route 53 would for a private hosted zone."""
        name = normalize(qname)
        rtype = qtype.upper()
        inside = [zone for zone in self.zones() if within(name, zone)]
        if not inside:
            return Answer("REFUSED")
        zone = max(inside, key=len)
        owner = qname if qname.endswith(".") else qname + "."
        records = self._rrsets(zone, name, owner)
        if records is None:
            return Answer("NXDOMAIN", authority=(_soa(zone),))
        if rtype == "ANY":
            chosen = tuple(r for rs in records.values() for r in rs)
        else:
            chosen = tuple(records.get(rtype, ()))
        if not chosen:
            return Answer("NOERROR", authority=(_soa(zone),))
        return Answer("NOERROR", answer=chosen)

    def _rrsets(
        self, zone: str, name: str, owner: str
    ) -> dict[str, Sequence[ResourceRecord]] | None:
        """The records at ``name`` by type; None when the name does not exist."""
        rrsets: dict[str, Sequence[ResourceRecord]] = {}
        if name == zone:
            rrsets["SOA"] = (ResourceRecord(owner, "SOA", SOA_TTL, SOA_VALUE),)
            rrsets["NS"] = tuple(ResourceRecord(owner, "NS", NS_TTL, ns) for ns in NS_VALUES)
        if (record := self._records.get(name)) and self.record_zone(name) == zone:
            rrsets["A"] = (ResourceRecord(owner, "A", record.ttl, record.ipv4),)
        aliased = self._aliases.get(name) if name == zone else None
        if aliased is not None and aliased.instances:
            rrsets["A"] = [
                ResourceRecord(owner, "A", aliased.ttl, i.ipv4) for _, i in self._route(aliased)
            ]
        for fqdn, service, instance_id in self._owners(zone, name):
            if instance_id is None:
                rrsets.update(self._service_rrsets(fqdn, service, owner))
            else:
                instance = service.instances[instance_id]
                rrsets["A"] = (ResourceRecord(owner, "A", service.ttl, instance.ipv4),)
        if rrsets:
            return rrsets
        # An empty non-terminal (e.g. ``backend.microservice.local``) exists without records.
        if any(within(known, name) for known in self._names(zone)):
            return {}
        return None

    def _owners(self, zone: str, name: str) -> Iterable[tuple[str, DiscoveryService, str | None]]:
        """Services named ``name`` (instance None), or owning it as an SRV target (instance)."""
        for service_name, service in self._namespaces.get(zone, {}).items():
            fqdn = f"{service_name}.{zone}"
            if name == fqdn and service.instances:
                yield fqdn, service, None
            elif "SRV" in service.record_types and name.endswith("." + fqdn):
                instance_id = name.removesuffix("." + fqdn)
                if instance_id in service.instances:
                    yield fqdn, service, instance_id

    def _names(self, zone: str) -> Iterable[str]:
        yield from (n for n in self._records if self.record_zone(n) == zone)
        for service_name, service in self._namespaces.get(zone, {}).items():
            fqdn = f"{service_name}.{zone}"
            if service.instances and service.record_types:
                yield fqdn
            if "SRV" in service.record_types:
                yield from (f"{i}.{fqdn}" for i in service.instances)

    def _service_rrsets(
        self, fqdn: str, service: DiscoveryService, owner: str
    ) -> dict[str, Sequence[ResourceRecord]]:
        chosen = self._route(service)
        rrsets: dict[str, Sequence[ResourceRecord]] = {}
        if "A" in service.record_types:
            rrsets["A"] = [ResourceRecord(owner, "A", service.ttl, i.ipv4) for _, i in chosen]
        if "SRV" in service.record_types:
            rrsets["SRV"] = [
                ResourceRecord(
                    owner, "SRV", service.ttl, f"{SRV_PRIORITY} {SRV_WEIGHT} {i.port} {key}.{fqdn}."
                )
                for key, i in chosen
            ]
        return rrsets

    def _route(self, service: DiscoveryService) -> list[tuple[str, ServiceInstance]]:
        """The instances one answer holds, by the service's routing policy."""
        instances = list(service.instances.items())
        healthy = [(k, i) for k, i in instances if i.health_status == "HEALTHY"]
        if service.routing_policy == "WEIGHTED":
            # Equal weights; when all are unhealthy Route 53 treats all as healthy.
            return [self._rng.choice(healthy or instances)]
        pool = healthy or instances
        return self._rng.sample(pool, min(len(pool), MULTIVALUE_MAX_RECORDS))


def normalize(name: str) -> str:
    return name.rstrip(".").lower()


def within(name: str, zone: str) -> bool:
    return name == zone or name.endswith("." + zone)


def _soa(zone: str) -> ResourceRecord:
    return ResourceRecord(zone + ".", "SOA", SOA_TTL, SOA_VALUE)
