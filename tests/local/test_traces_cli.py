"""`fargo traces`: its --slow durations, the list and the waterfall it prints."""

from __future__ import annotations

import argparse

import pytest

from fargo.local.cli.traces import parse_slow, render_list, render_waterfall

TRACE = "1-6b110e49-c967ee96d8129534853b0d0d"


@pytest.mark.parametrize(("text", "ms"), [("100ms", 100.0), ("1.5s", 1500.0), ("250", 250.0)])
def test_slow_takes_milliseconds_or_seconds(text: str, ms: float) -> None:
    assert parse_slow(text) == ms


def test_a_bad_duration_says_what_is_expected() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="expected a duration such as 100ms"):
        parse_slow("fast")


def span(
    span_id: str,
    parent: str | None,
    name: str,
    kind: str,
    start: float,
    end: float,
    own: float | None = None,
    target: str | None = None,
) -> dict[str, object]:
    return {
        "id": span_id,
        "parent_id": parent,
        "name": name,
        "kind": kind,
        "start_time": start,
        "end_time": end,
        "duration_ms": (end - start) * 1000,
        "own_ms": own,
        "status": 200,
        "inferred": target is None and kind in ("load_balancer", "discovery"),
        "target": target,
    }


def test_the_waterfall_indents_children_and_places_bars_on_the_time_line() -> None:
    trace = {
        "trace_id": TRACE,
        "request": "/api/private-with-alb",
        "duration_ms": 10.0,
        "spans": [
            span("c", None, "client", "client", 0.0, 0.010),
            span("p", "c", "public", "load_balancer", 0.0, 0.010, own=0.4, target="127.0.1.7:8090"),
            span("s", "p", "backend-public", "service", 0.0, 0.010),
            span("k", "s", "internal-x.elb.fargo.internal", "call", 0.005, 0.010),
            span("i", "k", "internal", "load_balancer", 0.005, 0.010, own=2.0),
        ],
    }
    lines = render_waterfall(trace).splitlines()
    assert lines[0] == f"trace {TRACE}  /api/private-with-alb  10.0 ms"
    # The public ALB's span from its access-log entry: not inferred, with its target.
    assert lines[2].startswith("  public (load balancer) ")
    assert lines[2].endswith("(own 0.40 ms)  → 127.0.1.7:8090")
    assert lines[3].startswith("    backend-public")
    assert lines[5].lstrip().startswith("internal (load balancer)*") and "(own 2.00 ms)" in lines[5]
    bar = lines[4].split("|")[1]
    assert bar.index("█") == 20 and bar.count("█") == 20  # the second half of the time line


def test_the_list_says_why_it_is_empty() -> None:
    assert "no `tracing: xray`" in render_list({"tracing": "off", "traces": []})
    assert "first request each second" in render_list({"tracing": "xray", "kept": 3, "traces": []})
    table = render_list(
        {
            "tracing": "xray",
            "traces": [
                {
                    "trace_id": TRACE,
                    "start_time": 0.0,
                    "duration_ms": 3.25,
                    "status": 200,
                    "request": "/api/public",
                    "services": ["backend-public"],
                }
            ],
        }
    )
    assert TRACE in table and "3.2ms" in table and "/api/public  backend-public" in table
