"""Service Connect in the spec (fargo.spec.service_connect): endpoints, clients, located errors."""

from __future__ import annotations

import pytest

from fargo.spec import check_spec_text, parse_spec
from fargo.spec import service_connect as sc


@pytest.fixture
def connected(shop):
    """The shop with api as a Service Connect server that web calls."""
    return (
        shop.edit(
            "  container_insights: true\n",
            "  container_insights: true\n  service_connect: {namespace: shop.internal}\n",
        )
        .edit(
            "    discovery: api.internal\n",
            "    discovery: api.internal\n    service_connect: {dns_name: api.shop, port: 9000}\n",
        )
        .edit(
            "    target_groups: [web]\n",
            "    target_groups: [web]\n    calls: [api]\n",
        )
        .edit(
            '      API_URL: "http://${lb:edge.dns_name}"\n',
            '      API_URL: "http://${lb:edge.dns_name}"\n'
            '      ORDERS_URL: "http://${service_connect:api}:9000/orders"\n',
        )
    )


def test_an_endpoint_with_its_defaults_and_its_clients(connected) -> None:
    spec = parse_spec(connected.text)

    assert sc.endpoints(spec) == {
        "api": sc.Endpoint(
            service="api",
            namespace="shop.internal",
            discovery_name="api",
            dns_name="api.shop",
            port=9000,
            container_port=9000,
        )
    }
    assert sc.clients(spec) == ["web", "api"]  # a client-server service is a client too


def test_default_dns_name_is_the_discovery_name_in_the_namespace(connected) -> None:
    spec = parse_spec(
        connected.edit("{dns_name: api.shop, port: 9000}", "{discovery_name: orders}")
        .edit("${service_connect:api}", "${service_connect:orders}")
        .text
    )

    [endpoint] = sc.endpoints(spec).values()
    assert (endpoint.dns_name, endpoint.port) == ("orders.shop.internal", 9000)


def test_a_server_without_a_namespace_is_refused_where_it_says_service_connect(connected) -> None:
    bad = connected.edit("  service_connect: {namespace: shop.internal}\n", "")

    rendered = bad.rendered()

    assert (
        f"shop.yaml:{bad.at('service_connect: {dns_name')}: services.api.service_connect: "
        + (
            "Service Connect needs a namespace, and the cluster has none (set "
            "cluster.service_connect.namespace: the discovery namespace, or a new name (fargo "
            "creates a Cloud Map HTTP namespace))"
        )
        in rendered
    )


def test_a_reference_from_a_service_that_does_not_call_the_server(connected) -> None:
    bad = connected.edit("    calls: [api]\n", "")

    [problem] = bad.problems()

    assert problem.field_path == "services.web.environment.ORDERS_URL"
    assert f"{problem.line}:{problem.column}" == bad.at("ORDERS_URL")
    assert problem.message == (
        "${service_connect:api}: only Service Connect clients resolve the endpoint, and "
        "'web' does not call 'api'"
    )
    assert problem.hint == ("add api to services.web.calls (it also opens the security group path)")


def test_a_reference_that_calls_another_port_than_the_endpoints(connected) -> None:
    [problem] = connected.edit("api}:9000/orders", "api}:8000/orders").problems()

    assert problem.field_path == "services.web.environment.ORDERS_URL"
    assert problem.message == (
        "${service_connect:api}:8000 calls port 8000; the endpoint's port is 9000"
    )
    assert problem.hint == "call http://api.shop:9000, or set services.api.service_connect.port"


def test_a_reference_to_an_unknown_endpoint_suggests_the_near_one(connected) -> None:
    [problem] = connected.edit("${service_connect:api}", "${service_connect:apj}").problems()

    assert problem.message == "no Service Connect discovery name named 'apj'"
    assert problem.hint == "did you mean 'api'?"


def test_a_discovery_name_that_is_a_cloud_map_service_of_the_same_namespace(connected) -> None:
    bad = (
        connected.edit("{namespace: shop.internal}", "{namespace: shop.local}")
        .edit("      ttl: 10\n", "      ttl: 10\n    - name: orders\n")
        .edit("{dns_name: api.shop, port: 9000}", "{discovery_name: orders, dns_name: api.shop}")
        .edit("${service_connect:api}", "${service_connect:orders}")
    )

    [problem] = bad.problems()

    assert problem.field_path == "services.api.service_connect.discovery_name"
    assert f"{problem.line}:{problem.column}" == bad.at("discovery_name: orders")
    assert problem.message == (
        "discovery name 'orders' is a Cloud Map service of the discovery section in namespace "
        "'shop.local' already"
    )


def test_two_servers_claiming_one_discovery_name_and_one_endpoint(connected) -> None:
    bad = connected.edit(
        "    calls: [api]\n",
        "    calls: [api]\n    service_connect: {discovery_name: api, dns_name: api.shop}\n",
    )

    problems = [(p.field_path, p.message) for p in bad.problems()]

    assert (
        "services.api.service_connect",
        "discovery name 'api' is already service 'web''s Service Connect name",
    ) in problems
    assert (
        "services.api.service_connect.dns_name",
        "endpoint 'api.shop' is already service 'web''s",
    ) in problems


def test_an_endpoint_named_like_another_services_discovery_record(connected) -> None:
    bad = connected.edit(
        "    calls: [api]\n",
        "    calls: [api]\n    service_connect: {dns_name: api.internal.shop.local}\n",
    )

    [problem] = bad.problems()

    assert problem.field_path == "services.web.service_connect.dns_name"
    assert problem.message == (
        "endpoint 'api.internal.shop.local' is the discovery name of service 'api': Service "
        "Connect clients would reach this service by it, everyone else 'api'"
    )


def test_the_same_name_for_dns_discovery_and_service_connect_of_one_service(connected) -> None:
    """AWS's migration path: clients move from DNS to the proxy under the same name."""
    spec = parse_spec(
        connected.edit("{dns_name: api.shop, port: 9000}", "{dns_name: api.internal.shop.local}")
        .edit("${service_connect:api}", "${discovery:api.internal}")
        .text
    )

    assert sc.endpoints(spec)["api"].dns_name == spec.discovery.fqdn("api.internal")  # type: ignore[union-attr]


def test_tasks_of_256_cpu_units_with_a_proxy_get_a_warning(connected) -> None:
    report = check_spec_text(connected.text, "shop.yaml", world="twin")

    warnings = {w.field_path: w for w in report.warnings if w.field_path.endswith(".cpu")}
    assert set(warnings) == {"services.web.cpu", "services.api.cpu"}
    assert warnings["services.api.cpu"].message == (
        "256 CPU units for the application and its Service Connect proxy; AWS advises adding "
        "256 CPU units and 64 MiB for the proxy"
    )
    assert warnings["services.api.cpu"].line is not None


def test_no_proxy_warning_without_service_connect(shop) -> None:
    report = check_spec_text(shop.text, "shop.yaml", world="twin")

    assert not [w for w in report.warnings if w.field_path.endswith(".cpu")]
