"""The template rule evaluator: ALB semantics over the synthesized listener rules."""

from __future__ import annotations

import pytest

from fargo.cloud.rules import Decision, Request, TemplateListener, decide, template_listeners
from fargo.cloud.synth import SynthResult


@pytest.fixture(scope="module")
def edge(shop: SynthResult) -> TemplateListener:
    return template_listeners(shop.template("app"))[("edge", 443)]


@pytest.fixture(scope="module")
def public(reference: SynthResult) -> dict[int, TemplateListener]:
    listeners = template_listeners(reference.template("app"))
    return {port: listener for (lb, port), listener in listeners.items() if lb == "public"}


def test_listeners_are_found_by_load_balancer_and_port(reference: SynthResult) -> None:
    assert sorted(template_listeners(reference.template("app"))) == [
        ("internal", 8090),
        ("public", 80),
        ("public", 443),
    ]


def test_rules_are_read_in_priority_order(edge: TemplateListener) -> None:
    assert [rule.priority for rule in edge.rules] == [10, 20, 30, 40, 50, 60, 100]


def test_path_pattern_wildcards_and_case(public: dict[int, TemplateListener]) -> None:
    https = public[443]
    assert decide(https, Request(path="/api/")).target_groups == [("backend-public", 1)]
    assert decide(https, Request(path="/api")).target_groups == [("frontend", 1)]
    assert decide(https, Request(path="/API/x")).target_groups == [("frontend", 1)]
    assert decide(https, Request(path="/api/a/b/c")).priority == 1


def test_default_action_when_nothing_matches(public: dict[int, TemplateListener]) -> None:
    decision = decide(public[443], Request(path="/"))
    assert decision == Decision(priority=None, action="forward", target_groups=[("frontend", 1)])


def test_redirect_keeps_host_path_and_query(public: dict[int, TemplateListener]) -> None:
    decision = decide(public[80], Request(path="/a/b", query="x=1", host="fargo.example.com:80"))
    assert decision.action == "redirect" and decision.status_code == 301
    assert decision.location == "https://fargo.example.com/a/b?x=1"


def test_all_conditions_of_a_rule_must_hold(edge: TemplateListener) -> None:
    assert decide(edge, Request(host="api.shop.example.org", path="/v1/items")).priority == 10
    assert decide(edge, Request(host="api.shop.example.org", path="/v2/items")).priority is None
    assert decide(edge, Request(host="API.Shop.Example.org:443", path="/v1/")).priority == 10


def test_weighted_forward_lists_every_group(edge: TemplateListener) -> None:
    decision = decide(edge, Request(host="api.shop.example.org", path="/v1/x"))
    assert decision.target_groups == [("api-blue", 90), ("api-green", 10)]


def test_header_values_with_wildcards_and_case(edge: TemplateListener) -> None:
    assert decide(edge, Request(headers=[("x-canary", "TRUE")])).priority == 20
    assert decide(edge, Request(headers=[("X-Canary", "no"), ("X-Canary", "yes")])).priority == 20
    assert decide(edge, Request(headers=[("X-Canary", "truee")])).priority is None


def test_method_is_exact(edge: TemplateListener) -> None:
    assert decide(edge, Request(method="POST", path="/orders")).priority == 30
    assert decide(edge, Request(method="post", path="/orders")).priority is None
    assert decide(edge, Request(method="GET", path="/orders/1")).priority is None


def test_query_string_pairs(edge: TemplateListener) -> None:
    assert decide(edge, Request(query="a=1&version=20")).priority == 40
    assert decide(edge, Request(query="mode=canary")).priority == 40  # any key
    assert decide(edge, Request(query="VERSION=2")).priority == 40
    assert decide(edge, Request(query="version=3")).priority is None
    assert decide(edge, Request(query="v%65rsion=2")).priority == 40  # percent-decoded


def test_source_ip_v4_and_v6(edge: TemplateListener) -> None:
    blocked = decide(edge, Request(source_ip="192.0.2.77"))
    assert (blocked.priority, blocked.action, blocked.status_code, blocked.body) == (
        50,
        "fixed-response",
        403,
        "blocked",
    )
    assert decide(edge, Request(source_ip="2001:db8::1")).priority == 50
    assert decide(edge, Request(source_ip="198.51.100.1")).priority is None


def test_fixed_response_default(edge: TemplateListener) -> None:
    decision = decide(edge, Request(path="/nothing"))
    assert (decision.action, decision.status_code, decision.body) == (
        "fixed-response",
        404,
        '{"error": "not found"}',
    )


def test_302_redirect_with_path_template(edge: TemplateListener) -> None:
    decision = decide(edge, Request(path="/old/page", host="shop.example.org"))
    assert (decision.status_code, decision.location) == (
        302,
        "https://shop.example.org/new/old/page",
    )
