"""Parity: the synthesized listener rules and the twin's routing pick the same target.

A corpus of requests goes through the evaluator of the synthesized template
(`fargo.cloud.rules`); each decision is checked against the expected target, and against
the twin's `fargo.spec.routing.decide` on the same spec listener.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from fargo.cloud import rules
from fargo.cloud.synth import SynthResult
from fargo.spec import Spec
from fargo.spec.elb import Request

HAVE_TWIN = importlib.util.find_spec("fargo.spec.routing") is not None

# (load balancer, port, request, expected): expected is a forward's target group,
# ("redirect", status) or ("fixed-response", status).
Expected = str | tuple[str, int]
REFERENCE_CORPUS: list[tuple[str, int, Request, Expected]] = [
    ("public", 443, Request(path="/api/public", host="fargo.example.com"), "backend-public"),
    ("public", 443, Request(path="/api/private"), "backend-public"),
    ("public", 443, Request(path="/api/private-with-alb"), "backend-public"),
    ("public", 443, Request(path="/api/"), "backend-public"),
    ("public", 443, Request(path="/api/a/b", query="q=1"), "backend-public"),
    ("public", 443, Request(method="POST", path="/api/public"), "backend-public"),
    ("public", 443, Request(path="/api"), "frontend"),
    ("public", 443, Request(path="/API/public"), "frontend"),
    ("public", 443, Request(path="/apix/y"), "frontend"),
    ("public", 443, Request(path="/x/api/y"), "frontend"),
    ("public", 443, Request(path="/"), "frontend"),
    ("public", 443, Request(path="/index.html", host="other.example"), "frontend"),
    ("public", 80, Request(path="/api/public"), ("redirect", 301)),
    ("public", 80, Request(path="/"), ("redirect", 301)),
    ("internal", 8090, Request(path="/endpoint"), "backend-private-with-alb"),
    ("internal", 8090, Request(path="/"), "backend-private-with-alb"),
]
SHOP_CORPUS: list[tuple[str, int, Request, Expected]] = [
    ("edge", 443, Request(host="api.shop.example.org", path="/v1/items"), "api-blue"),
    ("edge", 443, Request(host="API.SHOP.EXAMPLE.ORG:443", path="/v1/"), "api-blue"),
    ("edge", 443, Request(host="api.shop.example.org.", path="/v1/"), "api-blue"),
    (
        "edge",
        443,
        Request(host="api.shop.example.org", path="/v2/items"),
        ("fixed-response", 404),
    ),
    ("edge", 443, Request(headers=[("X-Canary", "yes")]), "api-green"),
    ("edge", 443, Request(headers=[("x-canary", "TRUE")]), "api-green"),
    ("edge", 443, Request(headers=[("X-Canary", "truee")]), ("fixed-response", 404)),
    ("edge", 443, Request(method="POST", path="/orders"), "api-blue"),
    ("edge", 443, Request(method="PUT", path="/orders/7"), "api-blue"),
    ("edge", 443, Request(method="GET", path="/orders/7"), ("fixed-response", 404)),
    ("edge", 443, Request(method="POST", path="/orders7"), ("fixed-response", 404)),
    ("edge", 443, Request(query="version=2"), "api-green"),
    ("edge", 443, Request(query="a=b&version=21"), "api-green"),
    ("edge", 443, Request(query="mode=CANARY"), "api-green"),
    ("edge", 443, Request(query="version=3"), ("fixed-response", 404)),
    ("edge", 443, Request(source_ip="192.0.2.9"), ("fixed-response", 403)),
    ("edge", 443, Request(source_ip="2001:db8::5"), ("fixed-response", 403)),
    ("edge", 443, Request(path="/old/x", host="shop.example.org"), ("redirect", 302)),
    ("edge", 443, Request(host="shop.example.org", path="/"), "web"),
    ("edge", 443, Request(host="www.shop.example.org", path="/cart"), "web"),
    ("edge", 443, Request(host="shop.example.org.evil", path="/"), ("fixed-response", 404)),
    ("edge", 80, Request(host="shop.example.org", path="/v1/"), ("redirect", 301)),
]


def outcome(decision: rules.Decision) -> Expected:
    if decision.action == "forward":
        heaviest = max(decision.target_groups, key=lambda group: group[1])
        return heaviest[0]
    assert decision.status_code is not None
    return (decision.action, decision.status_code)


def twin_outcome(listener: Any, request: Request) -> tuple[Any, ...]:
    from fargo.spec import routing

    twin = routing.decide(listener, request)  # one Request type feeds both evaluators
    action = twin.action
    kind = action.type.replace("_", "-")
    status: int | None = None
    if action.redirect is not None:
        status = int(action.redirect.status_code.removeprefix("HTTP_"))
    elif action.fixed_response is not None:
        status = action.fixed_response.status_code
    return (twin.priority, kind, sorted(twin.target_groups), status)


def cloud_outcome(decision: rules.Decision) -> tuple[Any, ...]:
    return (
        decision.priority,
        decision.action,
        sorted(decision.target_groups),
        decision.status_code,
    )


def listener_spec(spec: Spec, balancer: str, port: int) -> Any:
    return next(lst for lst in spec.load_balancers[balancer].listeners if lst.port == port)


@pytest.mark.parametrize(("balancer", "port", "request_", "expected"), REFERENCE_CORPUS)
def test_reference_template_routes_as_designed(
    reference: SynthResult, balancer: str, port: int, request_: Request, expected: Expected
) -> None:
    listeners = rules.template_listeners(reference.template("app"))
    assert outcome(rules.decide(listeners[(balancer, port)], request_)) == expected


@pytest.mark.parametrize(("balancer", "port", "request_", "expected"), SHOP_CORPUS)
def test_second_template_routes_as_designed(
    shop: SynthResult, balancer: str, port: int, request_: Request, expected: Expected
) -> None:
    listeners = rules.template_listeners(shop.template("app"))
    assert outcome(rules.decide(listeners[(balancer, port)], request_)) == expected


@pytest.mark.skipif(not HAVE_TWIN, reason="fargo.spec.routing (the twin's router) is not there yet")
@pytest.mark.parametrize(
    ("system", "balancer", "port", "request_"),
    [("reference", b, p, r) for b, p, r, _ in REFERENCE_CORPUS]
    + [("shop", b, p, r) for b, p, r, _ in SHOP_CORPUS],
)
def test_twin_decides_the_same_as_the_template(
    request: pytest.FixtureRequest, system: str, balancer: str, port: int, request_: Request
) -> None:
    result: SynthResult = request.getfixturevalue(system)
    template_listener = rules.template_listeners(result.template("app"))[(balancer, port)]
    cloud = cloud_outcome(rules.decide(template_listener, request_))
    twin = twin_outcome(listener_spec(result.spec, balancer, port), request_)
    assert twin == cloud
