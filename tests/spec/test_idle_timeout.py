"""A load balancer's idle timeout stays below the keep-alive of the services behind it."""

from __future__ import annotations

from fargo.spec import parse_spec
from fargo.spec.defaults import IDLE_TIMEOUT_SECONDS, KEEP_ALIVE_SECONDS

IDLE_120 = ("    scheme: internet-facing\n", "    scheme: internet-facing\n    idle_timeout: 120\n")


def test_the_defaults_keep_the_load_balancer_closing_first(shop) -> None:
    spec = parse_spec(shop.text)

    assert IDLE_TIMEOUT_SECONDS < KEEP_ALIVE_SECONDS
    assert spec.load_balancers["edge"].idle_timeout == IDLE_TIMEOUT_SECONDS
    assert spec.services["web"].keep_alive == KEEP_ALIVE_SECONDS


def test_an_idle_timeout_at_the_keep_alive_is_refused_for_each_service_behind_it(shop) -> None:
    bad = shop.edit(IDLE_120[0], IDLE_120[1].replace("120", "75"))

    rendered = bad.rendered()

    assert rendered == [
        f"shop.yaml:{bad.at('idle_timeout')}: load_balancers.edge.idle_timeout: load balancer "
        f"'edge' keeps idle connections for 75s, service {service!r} (target group "
        f"{service!r}) for 75s: the load balancer could reuse a connection the task has just "
        f"closed (a 502) (keep idle_timeout below 75, or raise services.{service}.keep_alive "
        "above 75)"
        for service in ("web", "api")
    ]


def test_a_keep_alive_below_the_default_idle_timeout_points_at_the_keep_alive(shop) -> None:
    bad = shop.edit("    port: 8000\n", "    port: 8000\n    keep_alive: 60\n")

    [problem] = bad.problems()

    assert problem.field_path == "services.web.keep_alive"
    assert f"{problem.line}:{problem.column}" == bad.at("keep_alive: 60")
    assert "keeps idle connections for 60s" in problem.message


def test_a_longer_keep_alive_allows_a_longer_idle_timeout(shop) -> None:
    longer = shop.edit(*IDLE_120).edit("    port: 8000\n", "    port: 8000\n    keep_alive: 125\n")

    [problem] = longer.problems()  # api still keeps 75 s
    assert problem.message.startswith("load balancer 'edge' keeps idle connections for 120s")
    assert "service 'api'" in problem.message

    both = longer.edit("    port: 9000\n", "    port: 9000\n    keep_alive: 121\n")
    spec = parse_spec(both.text)
    assert (spec.services["web"].keep_alive, spec.services["api"].keep_alive) == (125, 121)


def test_a_service_no_load_balancer_forwards_to_keeps_any_keep_alive(shop) -> None:
    spec = parse_spec(
        shop.edit("    port: 9000\n", "    port: 9000\n    keep_alive: 5\n")
        .edit("    target_groups: [api]\n", "")
        .edit("            action: {forward: api}", "            action: {forward: web}")
        .text
    )

    assert spec.services["api"].keep_alive == 5
