"""Cloud Map registry and the Route 53 answers it gives."""

from __future__ import annotations

import dataclasses
import random

import pytest

from fargo.local.cloudmap.registry import (
    CloudMap,
    CloudMapError,
    InstanceNotFound,
    InvalidInput,
    NamespaceAlreadyExists,
    NamespaceNotFound,
    ResourceInUse,
    ServiceAlreadyExists,
    ServiceNotFound,
)
from fargo.local.cloudmap.service_connect import delete_endpoint, make_endpoint
from fargo.spec.service_connect import Endpoint

NS = "microservice.local"
SERVICE = "private.backend"
FQDN = f"{SERVICE}.{NS}"


def registry(
    count: int, *, routing_policy: str = "MULTIVALUE", record_types: tuple[str, ...] = ("A",)
) -> CloudMap:
    cloud_map = CloudMap(rng=random.Random(7))
    cloud_map.create_private_dns_namespace(NS)
    cloud_map.create_service(
        NS,
        SERVICE,
        ttl=60,
        record_types=record_types,
        routing_policy=routing_policy,  # type: ignore[arg-type]
    )
    for i in range(count):
        cloud_map.register_instance(NS, SERVICE, f"task{i}", f"127.0.1.{i + 1}", 8090)
    return cloud_map


def addresses(cloud_map: CloudMap, name: str = FQDN) -> list[str]:
    answer = cloud_map.answer(name, "A")
    assert answer.rcode == "NOERROR"
    return [r.value for r in answer.answer]


def test_multivalue_answers_at_most_eight_healthy_records_with_the_service_ttl() -> None:
    cloud_map = registry(10)
    answer = cloud_map.answer(FQDN, "A")
    assert answer.rcode == "NOERROR"
    assert answer.authoritative
    assert len(answer.answer) == 8
    assert len({r.value for r in answer.answer}) == 8
    assert {r.ttl for r in answer.answer} == {60}
    assert {r.type for r in answer.answer} == {"A"}
    assert {r.name for r in answer.answer} == {FQDN + "."}


def test_multivalue_order_and_selection_vary_between_queries() -> None:
    cloud_map = registry(10)
    seen = {tuple(addresses(cloud_map)) for _ in range(20)}
    assert len(seen) > 1
    firsts = {answer[0] for answer in seen}
    assert len(firsts) > 1
    everyone = {a for answer in seen for a in answer}
    assert everyone == {f"127.0.1.{i}" for i in range(1, 11)}


def test_unhealthy_instances_leave_the_answer_and_come_back() -> None:
    cloud_map = registry(3)
    cloud_map.update_instance_custom_health_status(NS, SERVICE, "task1", "UNHEALTHY")
    for _ in range(10):
        assert sorted(addresses(cloud_map)) == ["127.0.1.1", "127.0.1.3"]
    cloud_map.update_instance_custom_health_status(NS, SERVICE, "task1", "HEALTHY")
    assert sorted(addresses(cloud_map)) == ["127.0.1.1", "127.0.1.2", "127.0.1.3"]


def test_all_unhealthy_falls_back_to_at_most_eight_unhealthy_records() -> None:
    cloud_map = registry(10)
    for i in range(10):
        cloud_map.update_instance_custom_health_status(NS, SERVICE, f"task{i}", "UNHEALTHY")
    assert len(addresses(cloud_map)) == 8


def test_weighted_answers_one_random_healthy_record() -> None:
    cloud_map = registry(3, routing_policy="WEIGHTED")
    cloud_map.update_instance_custom_health_status(NS, SERVICE, "task0", "UNHEALTHY")
    seen = set()
    for _ in range(30):
        answer = addresses(cloud_map)
        assert len(answer) == 1
        seen.add(answer[0])
    assert seen == {"127.0.1.2", "127.0.1.3"}


def test_weighted_with_none_healthy_answers_one_of_all() -> None:
    cloud_map = registry(2, routing_policy="WEIGHTED")
    for i in range(2):
        cloud_map.update_instance_custom_health_status(NS, SERVICE, f"task{i}", "UNHEALTHY")
    assert len(addresses(cloud_map)) == 1


def test_srv_records_point_at_instance_names_that_have_a_records() -> None:
    cloud_map = registry(2, record_types=("A", "SRV"))
    srv = cloud_map.answer(FQDN, "SRV")
    assert srv.rcode == "NOERROR"
    assert sorted(r.value for r in srv.answer) == [
        f"1 1 8090 task0.{FQDN}.",
        f"1 1 8090 task1.{FQDN}.",
    ]
    assert {r.ttl for r in srv.answer} == {60}
    assert addresses(cloud_map, f"task1.{FQDN}") == ["127.0.1.2"]


def test_srv_only_service_has_no_a_records() -> None:
    cloud_map = registry(1, record_types=("SRV",))
    nodata = cloud_map.answer(FQDN, "A")
    assert (nodata.rcode, nodata.answer) == ("NOERROR", ())
    assert addresses(cloud_map, f"task0.{FQDN}") == ["127.0.1.1"]


def test_unknown_name_in_a_zone_is_nxdomain_with_the_soa() -> None:
    answer = registry(1).answer(f"nothing.{NS}", "A")
    assert answer.rcode == "NXDOMAIN"
    assert answer.answer == ()
    assert [(r.name, r.type) for r in answer.authority] == [(NS + ".", "SOA")]


def test_known_name_without_that_type_is_nodata() -> None:
    cloud_map = registry(1)
    for name, rtype in [(FQDN, "AAAA"), (FQDN, "SRV"), (f"backend.{NS}", "A"), (NS, "A")]:
        answer = cloud_map.answer(name, rtype)
        assert (answer.rcode, answer.answer) == ("NOERROR", ()), (name, rtype)
        assert [r.type for r in answer.authority] == ["SOA"]


def test_zone_apex_has_soa_and_ns() -> None:
    cloud_map = registry(0)
    assert [r.type for r in cloud_map.answer(NS, "SOA").answer] == ["SOA"]
    assert [r.type for r in cloud_map.answer(NS, "NS").answer] == ["NS"]


def test_names_outside_every_zone_are_refused() -> None:
    answer = registry(1).answer("example.com", "A")
    assert answer.rcode == "REFUSED"
    assert not answer.authoritative
    assert answer.answer == answer.authority == ()


def test_service_without_instances_does_not_exist_in_dns() -> None:
    cloud_map = registry(1)
    cloud_map.deregister_instance(NS, SERVICE, "task0")
    assert cloud_map.answer(FQDN, "A").rcode == "NXDOMAIN"


def test_names_are_case_insensitive_and_may_be_absolute() -> None:
    cloud_map = registry(1)
    answer = cloud_map.answer("Private.BACKEND.Microservice.Local.", "A")
    assert [r.value for r in answer.answer] == ["127.0.1.1"]
    assert answer.answer[0].name == "Private.BACKEND.Microservice.Local."
    assert cloud_map.discover_instances(NS.upper(), SERVICE.upper())[0].instance_id == "task0"


def test_discover_instances_filters_by_health() -> None:
    cloud_map = registry(2)
    cloud_map.update_instance_custom_health_status(NS, SERVICE, "task0", "UNHEALTHY")
    healthy = cloud_map.discover_instances(NS, SERVICE)
    assert [i.instance_id for i in healthy] == ["task1"]
    assert healthy[0].attributes == {"AWS_INSTANCE_IPV4": "127.0.1.2", "AWS_INSTANCE_PORT": "8090"}
    unhealthy = cloud_map.discover_instances(NS, SERVICE, health_status="UNHEALTHY")
    assert [i.instance_id for i in unhealthy] == ["task0"]
    assert len(cloud_map.discover_instances(NS, SERVICE, health_status="ALL")) == 2


def test_reregistering_updates_the_instance_and_keeps_its_health() -> None:
    cloud_map = registry(1)
    cloud_map.update_instance_custom_health_status(NS, SERVICE, "task0", "UNHEALTHY")
    cloud_map.register_instance(NS, SERVICE, "task0", "127.0.1.9", 8091, {"AZ": "a"})
    (instance,) = cloud_map.discover_instances(NS, SERVICE, health_status="ALL")
    assert (instance.ipv4, instance.port, instance.health_status) == (
        "127.0.1.9",
        8091,
        "UNHEALTHY",
    )
    assert instance.attributes["AZ"] == "a"


def test_put_record_creates_a_zone_for_its_parent_domain() -> None:
    cloud_map = registry(1)
    cloud_map.put_record("internal-alb.elb.local", "127.0.2.1", 60)
    cloud_map.put_record(f"alias.{NS}", "127.0.2.2", 30)
    assert cloud_map.zones() == ["elb.local", NS]
    assert addresses(cloud_map, "internal-alb.elb.local") == ["127.0.2.1"]
    assert cloud_map.answer(f"alias.{NS}", "A").answer[0].ttl == 30
    assert cloud_map.answer("other.elb.local", "A").rcode == "NXDOMAIN"
    cloud_map.put_record("internal-alb.elb.local", "127.0.2.3", 60)
    assert addresses(cloud_map, "internal-alb.elb.local") == ["127.0.2.3"]
    cloud_map.delete_record("internal-alb.elb.local")
    assert cloud_map.zones() == [NS]
    assert cloud_map.answer("internal-alb.elb.local", "A").rcode == "REFUSED"


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda m: m.create_private_dns_namespace(NS), NamespaceAlreadyExists),
        (lambda m: m.create_service(NS, SERVICE, ttl=60), ServiceAlreadyExists),
        (lambda m: m.create_service("nope.local", "x", ttl=60), NamespaceNotFound),
        (lambda m: m.create_service(NS, "x", ttl=-1), InvalidInput),
        (lambda m: m.create_service(NS, "x", ttl=60, record_types=["AAAA"]), InvalidInput),
        (lambda m: m.create_service(NS, "bad name", ttl=60), InvalidInput),
        (lambda m: m.register_instance(NS, "nope", "t", "127.0.0.1", 80), ServiceNotFound),
        (lambda m: m.register_instance(NS, SERVICE, "t", "::1", 80), InvalidInput),
        (lambda m: m.register_instance(NS, SERVICE, "t", "127.0.0.1", 0), InvalidInput),
        (lambda m: m.register_instance(NS, SERVICE, "a.b", "127.0.0.1", 80), InvalidInput),
        (lambda m: m.deregister_instance(NS, SERVICE, "nope"), InstanceNotFound),
        (
            lambda m: m.update_instance_custom_health_status(NS, SERVICE, "nope", "HEALTHY"),
            InstanceNotFound,
        ),
        (lambda m: m.delete_service(NS, SERVICE), ResourceInUse),
        (lambda m: m.delete_namespace(NS), ResourceInUse),
        (lambda m: m.delete_record("nope.local"), InvalidInput),
        (lambda m: m.put_record("x.local", "nope", 60), InvalidInput),
    ],
)
def test_errors_are_named_after_aws(call: object, error: type[CloudMapError]) -> None:
    with pytest.raises(error) as raised:
        call(registry(1))  # type: ignore[operator]
    assert isinstance(raised.value, CloudMapError)
    assert str(raised.value)


def test_delete_service_and_namespace_when_empty() -> None:
    cloud_map = registry(1)
    cloud_map.deregister_instance(NS, SERVICE, "task0")
    cloud_map.delete_service(NS, SERVICE)
    cloud_map.delete_namespace(NS)
    assert cloud_map.zones() == []


# -- Service Connect as DNS (HTTP namespace, API-only services, client aliases) ----------------


def connected(count: int) -> CloudMap:
    """An endpoint ``backend-private`` in the HTTP namespace ``connect.internal``, its client
    alias ``backend.internal``, and ``count`` tasks."""
    cloud_map = CloudMap(rng=random.Random(7))
    cloud_map.create_http_namespace("connect.internal")
    cloud_map.create_service("connect.internal", "backend-private", ttl=1, record_types=())
    cloud_map.put_client_alias("backend.internal", "connect.internal", "backend-private")
    for i in range(count):
        cloud_map.register_instance(
            "connect.internal", "backend-private", f"task{i}", f"127.0.2.{i + 1}", 8090
        )
    return cloud_map


def test_a_client_alias_answers_with_the_endpoints_healthy_tasks() -> None:
    cloud_map = connected(3)
    cloud_map.update_instance_custom_health_status(
        "connect.internal", "backend-private", "task1", "UNHEALTHY"
    )

    answer = cloud_map.answer("backend.internal", "A")

    assert answer.rcode == "NOERROR"
    assert sorted(r.value for r in answer.answer) == ["127.0.2.1", "127.0.2.3"]
    assert {r.ttl for r in answer.answer} == {1}
    assert "backend.internal" in cloud_map.zones()


def test_a_client_alias_follows_registration_and_deregistration() -> None:
    cloud_map = connected(0)
    assert cloud_map.answer("backend.internal", "A").answer == ()  # NODATA: no task yet

    cloud_map.register_instance("connect.internal", "backend-private", "t9", "127.0.2.9", 8090)
    assert [r.value for r in cloud_map.answer("backend.internal", "A").answer] == ["127.0.2.9"]

    cloud_map.deregister_instance("connect.internal", "backend-private", "t9")
    assert cloud_map.answer("backend.internal", "A").answer == ()


def test_an_http_namespace_and_an_api_only_service_have_no_dns_names() -> None:
    """As on AWS: found by DiscoverInstances, never by DNS."""
    cloud_map = connected(2)

    assert "connect.internal" not in cloud_map.zones()
    assert cloud_map.answer("backend-private.connect.internal", "A").rcode == "REFUSED"
    assert len(cloud_map.discover_instances("connect.internal", "backend-private")) == 2


def test_an_api_only_service_in_a_dns_namespace_has_no_record() -> None:
    cloud_map = registry(1)
    cloud_map.create_service(NS, "backend-private", ttl=1, record_types=())
    cloud_map.register_instance(NS, "backend-private", "t1", "127.0.2.1", 8090)

    assert cloud_map.answer(f"backend-private.{NS}", "A").rcode == "NXDOMAIN"
    assert cloud_map.answer(FQDN, "A").answer  # the DNS service still answers


def test_an_http_namespace_refuses_dns_records() -> None:
    cloud_map = connected(0)

    with pytest.raises(InvalidInput, match="HTTP namespace"):
        cloud_map.create_service("connect.internal", "api", ttl=60, record_types=("A",))


def test_update_service_changes_dns_settings_and_keeps_instances() -> None:
    cloud_map = registry(2)
    cloud_map.update_service(NS, SERVICE, ttl=5, record_types=("A", "SRV"))
    answer = cloud_map.answer(FQDN, "A").answer
    assert {r.ttl for r in answer} == {5} and len(answer) == 2
    assert cloud_map.answer(f"{FQDN}", "SRV").answer
    with pytest.raises(InvalidInput, match="record types"):
        cloud_map.update_service(NS, SERVICE, ttl=5, record_types=("CNAME",))
    with pytest.raises(ServiceNotFound):
        cloud_map.update_service(NS, "nope", ttl=5)


def test_namespaces_and_services_are_listed_with_their_type() -> None:
    cloud_map = CloudMap()
    cloud_map.create_private_dns_namespace("shop.internal")
    cloud_map.create_http_namespace("connect.local")
    cloud_map.create_service("shop.internal", "api", ttl=15)
    cloud_map.register_instance("shop.internal", "api", "t1", "10.0.0.1", 80)
    assert cloud_map.namespaces() == [("shop.internal", "DNS_PRIVATE"), ("connect.local", "HTTP")]
    [(name, service)] = cloud_map.services("shop.internal").items()
    assert (name, service.ttl, list(service.instances)) == ("api", 15, ["t1"])
    assert cloud_map.services("connect.local") == {}
    with pytest.raises(NamespaceNotFound):
        cloud_map.services("nope.internal")


def test_a_changed_endpoint_keeps_its_service_and_retires_only_the_old_alias() -> None:
    cloud_map = connected(2)
    old = Endpoint(
        "backend-private", "connect.internal", "backend-private", "backend.internal", 8090, 8090
    )
    new = dataclasses.replace(old, dns_name="b.internal")
    make_endpoint(cloud_map, new)  # the service exists: its registrations stay
    assert sorted(addresses(cloud_map, "b.internal")) == ["127.0.2.1", "127.0.2.2"]
    delete_endpoint(cloud_map, old, keep=[new])
    assert not cloud_map.answer("backend.internal", "A").answer
    assert sorted(addresses(cloud_map, "b.internal")) == ["127.0.2.1", "127.0.2.2"]
    with pytest.raises(InvalidInput, match="no client alias"):
        cloud_map.delete_client_alias("backend.internal")


def test_a_removed_endpoint_is_deleted_only_once_no_task_is_registered() -> None:
    cloud_map = connected(1)
    endpoint = Endpoint(
        "backend-private", "connect.internal", "backend-private", "backend.internal", 8090, 8090
    )
    with pytest.raises(ResourceInUse):
        delete_endpoint(cloud_map, endpoint, keep=[])
    cloud_map.deregister_instance("connect.internal", "backend-private", "task0")
    make_endpoint(cloud_map, endpoint)  # its alias again, as a rolled-back spec would
    delete_endpoint(cloud_map, endpoint, keep=[])
    assert "backend-private" not in cloud_map.services("connect.internal")
