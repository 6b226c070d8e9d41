"""The general model (fargo.spec.model): any shape of system, not only the reference one."""

from __future__ import annotations

import pytest

from fargo.spec import Spec, parse_spec

# A system unlike the reference: three zones, no NAT, every ALB condition and action type,
# two Cloud Map services, one image run as three services.
MARKETPLACE = """\
name: marketplace
region: eu-central-1
network:
  cidr: 172.16.0.0/16
  availability_zones: 3
  nat_gateways: 0
  subnets:
    public: [172.16.0.0/24, 172.16.1.0/24, 172.16.2.0/24]
    private: [172.16.32.0/20, 172.16.48.0/20, 172.16.64.0/20]
images:
  shop: {dockerfile: shop/Dockerfile, tag_mutability: MUTABLE}
  worker: {dockerfile: worker/Dockerfile, scan_on_push: false}
cluster: {name: market}
discovery:
  namespace: market.internal
  services:
    - {name: orders, record_types: [A, SRV]}
    - {name: carts.v2, ttl: 5, routing_policy: WEIGHTED}
target_groups:
  storefront: {}
  checkout-blue: {health_check: {path: /ready, matcher: "200-299", interval: 10, timeout: 3}}
  checkout-green: {deregistration_delay: 0}
load_balancers:
  web:
    scheme: internet-facing
    certificate:
      domain: "*.market.example"
      subject_alternative_names: [market.example]
    listeners:
      - port: 443
        protocol: HTTPS
        default_action:
          fixed_response: {status_code: 404, content_type: application/json, message_body: "{}"}
        rules:
          - priority: 5
            conditions:
              - host_header: [shop.market.example, "*.shop.market.example"]
            action: {forward: storefront}
          - priority: 20
            conditions:
              - http_header: {name: X-Canary, values: ["yes"]}
              - http_request_method: [POST, PUT]
            action:
              forward:
                target_groups:
                  - {target_group: checkout-blue, weight: 90}
                  - {target_group: checkout-green, weight: 10}
          - priority: 30
            conditions:
              - query_string: [{key: lang, value: de}, {value: beta}]
            action:
              redirect: {host: de.market.example, path: "/#{path}", status_code: HTTP_302}
          - priority: 40
            conditions:
              - source_ip: [192.0.2.0/24, "2001:db8::/32"]
            action: {fixed_response: {status_code: 403, message_body: denied}}
      - port: 80
        protocol: HTTP
        default_action: {redirect: {protocol: HTTPS, port: "443"}}
services:
  storefront:
    image: shop
    port: 3000
    architecture: ARM64
    target_groups: [storefront]
    calls: [orders, carts]
    environment:
      ORDERS_URL: "http://${discovery:orders}:7000"
      CARTS_URL: "http://${discovery:carts.v2}:7000"
      SELF: storefront
  orders:
    image: shop
    port: 7000
    cpu: 1024
    memory: 3072
    discovery: orders
    target_groups: [checkout-blue, checkout-green]
    autoscaling: {min_capacity: 1, max_capacity: 10, target_memory_utilization: 60}
  carts:
    image: shop
    port: 7000
    discovery: carts.v2
  mailer:
    image: worker
    port: 8025
    desired_count: 0
"""


@pytest.fixture(scope="module")
def market() -> Spec:
    return parse_spec(MARKETPLACE, "marketplace.yaml")


def test_any_number_of_zones_services_and_images(market: Spec) -> None:
    assert market.network.availability_zones == 3
    assert market.network.nat_gateways == 0
    assert list(market.services) == ["storefront", "orders", "carts", "mailer"]
    assert [s for s, svc in market.services.items() if svc.image == "shop"] == [
        "storefront",
        "orders",
        "carts",
    ]
    assert market.images["worker"].scan_on_push is False


def test_every_rule_condition_type(market: Spec) -> None:
    [https, _] = market.load_balancers["web"].listeners
    conditions = [[c.field for c in rule.conditions] for rule in https.rules_by_priority()]

    assert conditions == [
        ["host_header"],
        ["http_header", "http_request_method"],
        ["query_string"],
        ["source_ip"],
    ]
    header = https.rules[1].conditions[0].http_header
    assert header is not None
    assert (header.name, header.values) == ("X-Canary", ["yes"])
    pairs = https.rules[2].conditions[0].query_string
    assert pairs is not None
    assert [(pair.key, pair.value) for pair in pairs] == [("lang", "de"), (None, "beta")]


def test_every_action_type_and_weighted_forward(market: Spec) -> None:
    [https, http] = market.load_balancers["web"].listeners

    assert [https.default_action.type, *(rule.action.type for rule in https.rules)] == [
        "fixed_response",
        "forward",
        "forward",
        "redirect",
        "fixed_response",
    ]
    weighted = https.rules[1].action.weighted_target_groups()
    assert [(w.target_group, w.weight) for w in weighted] == [
        ("checkout-blue", 90),
        ("checkout-green", 10),
    ]
    assert [(w.target_group, w.weight) for w in https.rules[0].action.weighted_target_groups()] == [
        ("storefront", 1)
    ]
    redirect = https.rules[2].action.redirect
    assert redirect is not None
    assert (redirect.protocol, redirect.host, redirect.query) == (
        "#{protocol}",
        "de.market.example",
        "#{query}",
    )
    assert http.default_action.type == "redirect"


def test_two_discovery_services_each_claimed_by_one_service(market: Spec) -> None:
    assert market.discovery is not None
    assert [d.name for d in market.discovery.services] == ["orders", "carts.v2"]
    assert market.services["orders"].discovery == "orders"
    assert market.services["carts"].discovery == "carts.v2"
    assert market.discovery_service("carts.v2") is not None
    assert market.discovery_service("nope") is None
    assert market.services_in("checkout-green") == ["orders"]


def test_defaults_fill_what_the_spec_leaves_out(market: Spec) -> None:
    carts = market.services["carts"]

    assert (carts.cpu, carts.memory, carts.desired_count) == (256, 512, 1)
    assert (carts.min_healthy_percent, carts.max_percent) == (100, 200)
    assert market.target_groups["storefront"].deregistration_delay == 300
    assert market.target_groups["storefront"].health_check.matcher == "200"
    assert market.logging.retention_days == 30


INVALID = {
    "fewer subnets than zones": (
        "public: [172.16.0.0/24, 172.16.1.0/24, 172.16.2.0/24]",
        "public: [172.16.0.0/24, 172.16.1.0/24]",
        "network.subnets.public",
        "public:",
        "2 public subnet(s) for 3 availability zones; give one per zone",
    ),
    "autoscaling minimum above maximum": (
        "{min_capacity: 1, max_capacity: 10,",
        "{min_capacity: 11, max_capacity: 10,",
        "services.orders.autoscaling",
        "autoscaling:",
        "min_capacity 11 is above max_capacity 10",
    ),
    "environment variable name": (
        "SELF:",
        "2SELF:",
        "services.storefront.environment.2SELF",
        "2SELF:",
        "'2SELF' is not a valid environment variable name",
    ),
}


@pytest.mark.parametrize(
    ("old", "new", "field", "at", "message"), INVALID.values(), ids=INVALID.keys()
)
def test_invalid_model_value(
    spec_text, old: str, new: str, field: str, at: str, message: str
) -> None:
    bad = spec_text(MARKETPLACE, "marketplace.yaml").edit(old, new)

    assert bad.rendered() == [f"marketplace.yaml:{bad.at(at)}: {field}: {message}"]
