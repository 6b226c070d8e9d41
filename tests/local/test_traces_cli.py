"""`fargo traces`: its --slow durations, its --service and --slow filters (through the
control plane, over a trace store fed segment documents), the list and the waterfall it
prints."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.local.xray_documents import (
    DISCOVERY,
    INTERNAL,
    SPEC,
    SPEC_PATH,
    datagram,
    document,
    hop,
)

from fargo.cli import main
from fargo.local.cli.traces import parse_slow, render_list, render_waterfall
from fargo.local.config import TwinConfig
from fargo.local.control.api import ControlServer
from fargo.local.runtime import Runtime
from fargo.local.state import folder
from fargo.local.xray.segments import parse_datagram

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


# -- the filters, as `fargo traces` asks the control plane for them ------------------------

# /api/private, 150 ms: backend-public calls backend-private by its Cloud Map name.
THROUGH_DISCOVERY = "1-6b110e49-000000000000000000000001"
# /api/private-with-alb, 20 ms: backend-public calls backend-private-with-alb through the
# internal load balancer.
THROUGH_ALB = "1-6b110e49-000000000000000000000002"
# /api/public, 5 ms: backend-public alone.
PUBLIC_ONLY = "1-6b110e49-000000000000000000000003"
SEGMENTS: list[dict[str, Any]] = [
    *hop(THROUGH_DISCOVERY, "backend-public", DISCOVERY, "backend-private", 10.0, 10.15, 1),
    *hop(THROUGH_ALB, "backend-public", INTERNAL, "backend-private-with-alb", 11.0, 11.02, 2),
    document("backend-public", "aaaaaaaaaaaaaaa3", 12.000, 12.005, trace=PUBLIC_ONLY),
]


@pytest.fixture
async def twin(tmp_path: Path) -> AsyncIterator[Runtime]:
    """The reference system's runtime (not started), its trace store fed the services'
    segment documents as its X-Ray daemon takes them, and its control plane answering on
    the state folder's socket, as `fargo traces` finds it."""
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o700)
    config = TwinConfig(spec_path=SPEC_PATH, state_dir=state_dir, network_mode="loopback")
    runtime = Runtime(SPEC, config)
    for doc in SEGMENTS:
        runtime.traces.add(parse_datagram(datagram(doc)))
    control = ControlServer(runtime, folder.control_socket(state_dir), asyncio.Event())
    await control.start()
    try:
        yield runtime
    finally:
        await control.stop()


async def fargo_traces(
    twin: Runtime, capsys: pytest.CaptureFixture[str], *options: str
) -> list[str]:
    """``fargo traces --json OPTIONS`` against ``twin``: the trace ids it lists."""
    argv = ["traces", "--state-dir", str(twin.state_dir), "--json", *options]
    code = await asyncio.to_thread(main, argv)  # the CLI runs its own event loop
    printed = capsys.readouterr()
    assert code == 0, printed.err
    return [trace["trace_id"] for trace in json.loads(printed.out)["traces"]]


async def test_service_lists_only_the_traces_through_that_service(
    twin: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await fargo_traces(twin, capsys) == [PUBLIC_ONLY, THROUGH_ALB, THROUGH_DISCOVERY]

    # backend-private is a prefix of backend-private-with-alb: only its own trace is kept.
    assert await fargo_traces(twin, capsys, "--service", "backend-private") == [THROUGH_DISCOVERY]
    assert await fargo_traces(twin, capsys, "-s", "backend-private-with-alb") == [THROUGH_ALB]
    assert await fargo_traces(twin, capsys, "-s", "backend-public") == [
        PUBLIC_ONLY,
        THROUGH_ALB,
        THROUGH_DISCOVERY,
    ]


async def test_slow_keeps_the_traces_at_least_that_long(
    twin: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await fargo_traces(twin, capsys, "--slow", "100ms") == [THROUGH_DISCOVERY]
    assert await fargo_traces(twin, capsys, "--slow", "20ms") == [THROUGH_ALB, THROUGH_DISCOVERY]
    assert await fargo_traces(twin, capsys, "--slow", "0.2s") == []
    # Both filters at once: the slow trace, but not through this service.
    assert (
        await fargo_traces(twin, capsys, "--slow", "100ms", "-s", "backend-private-with-alb") == []
    )
