"""The demonstration points' world-independent parts: sample requests, applicability, errors."""

from __future__ import annotations

from pathlib import Path

from tests.cli import ROOT

from fargo.demo import points as demo
from fargo.demo.report import Point
from fargo.demo.requests import samples
from fargo.spec import load_spec
from fargo.spec.elb import Listener
from fargo.spec.routing import decide

SECOND = ROOT / "tests" / "e2e" / "second.yaml"


def https_listener(spec_path: Path) -> Listener:
    spec = load_spec(spec_path)
    return next(
        lst
        for lb in spec.load_balancers.values()
        for lst in lb.listeners
        if lst.protocol == "HTTPS"
    )


def test_demo_makes_a_request_each_rule_matches_and_one_for_the_default() -> None:
    listener = https_listener(SECOND)
    made, unmade = samples(listener, "t0k3n", "127.0.0.1", source_ip="127.0.0.1")
    assert unmade == []
    decided = {s.for_rule: decide(listener, s.request).priority for s in made}
    assert decided == {5: 5, 10: 10, 20: 20, 30: 30, 40: 40, 50: 50, None: None}
    by_rule = {s.for_rule: s.request for s in made}
    assert by_rule[5].host == "admin.example.test"
    assert by_rule[20].path == "/b/xx"
    assert ("X-Canary", "on") in by_rule[40].headers


def test_a_source_ip_rule_is_sampled_only_from_an_address_it_matches() -> None:
    listener = Listener.model_validate(
        {
            "port": 443,
            "protocol": "HTTPS",
            "default_action": {"forward": "web"},
            "rules": [
                {
                    "priority": 1,
                    "conditions": [{"source_ip": ["192.0.2.0/24"]}],
                    "action": {"forward": "admin"},
                }
            ],
        }
    )
    for unknown_or_elsewhere in (None, "198.51.100.7"):
        made, unmade = samples(listener, "t0k3n", source_ip=unknown_or_elsewhere)
        assert [u["rule"] for u in unmade] == [1]
        assert [s.for_rule for s in made] == [None]
    made, unmade = samples(listener, "t0k3n", source_ip="192.0.2.9")
    assert unmade == [] and [s.for_rule for s in made] == [1, None]


def test_demo_skips_the_reference_routes_on_another_spec() -> None:
    spec = load_spec(SECOND)
    reason = demo._not_applicable(
        spec, https_listener(SECOND), demo.REFERENCE_ROUTES["internal load balancer"]
    )
    assert reason is not None and reason.startswith("not applicable to this spec")
    reference = load_spec(ROOT / "fargo.yaml")
    for route in demo.REFERENCE_ROUTES.values():
        assert demo._not_applicable(reference, https_listener(ROOT / "fargo.yaml"), route) is None


async def test_a_network_error_fails_its_point_with_the_error_as_evidence() -> None:
    async def refused(point: Point) -> Point:
        raise ConnectionRefusedError(111, "Connection refused")

    point = await demo.guard(Point(7, "tls"), refused)
    assert point.status == "fail"
    assert "ConnectionRefusedError" in point.evidence["error"]
