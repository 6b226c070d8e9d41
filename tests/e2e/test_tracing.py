"""X-Ray tracing on the running reference twin (``tracing: xray``): a request through the
public ALB, backend-public, the internal ALB and backend-private-with-alb is one trace;
``fargo traces`` lists and draws it; the control plane serves the service map."""

from __future__ import annotations

import asyncio
import json
import secrets
import ssl
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.e2e.conftest import ROOT, Twin, fargo, start_twin
from tests.waiting import wait_until

from fargo.local.control.api import ControlClient
from fargo.local.state import folder as state

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    yield from start_twin(ROOT / "fargo.yaml", tmp_path_factory.mktemp("tracing") / "state")


def get(twin: Twin, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    verify = ssl.create_default_context(cafile=twin.ca)
    with httpx.Client(verify=verify, timeout=10) as client:
        return client.get(twin.url("public", "https") + path, headers=headers or {})


def traces(twin: Twin, *args: str) -> Any:
    return json.loads(fargo("traces", "--json", "--state-dir", str(twin.state_dir), *args).stdout)


def test_a_request_through_both_load_balancers_is_one_trace(twin: Twin) -> None:
    # The client's own trace, sampled: ALB (the twin's Caddy) keeps its Root.
    trace_id = f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"
    answer = get(twin, "/api/private-with-alb", {"X-Amzn-Trace-Id": f"Root={trace_id};Sampled=1"})
    assert answer.status_code == 200, answer.text

    def complete() -> Any:
        listed = traces(twin, "-s", "backend-private-with-alb")["traces"]
        return next((t for t in listed if t["trace_id"] == trace_id and t["segments"] == 2), None)

    summary = wait_until(complete, timeout=10, what=f"trace {trace_id} with both segments")
    assert summary["request"] == "/api/private-with-alb" and summary["status"] == 200

    trace = traces(twin, trace_id)
    spans = {span["name"]: span for span in trace["spans"]}
    assert {"public", "backend-public", "internal", "backend-private-with-alb"} <= set(spans)
    public, caller, internal, callee = (
        spans["public"],
        spans["backend-public"],
        spans["internal"],
        spans["backend-private-with-alb"],
    )
    assert public["kind"] == internal["kind"] == "load_balancer"
    assert public["origin"] == "AWS::ElasticLoadBalancingV2::LoadBalancer"
    # The chain: public ALB → backend-public → its call → internal ALB → backend-private.
    assert caller["parent_id"] == public["id"]
    call = next(s for s in trace["spans"] if s["id"] == internal["parent_id"])
    assert call["kind"] == "call" and call["parent_id"] == caller["id"]
    assert callee["parent_id"] == internal["id"]
    # The internal ALB's own time: its call's duration minus the target's segment.
    assert internal["own_ms"] == pytest.approx(
        internal["duration_ms"] - callee["duration_ms"], abs=0.01
    )
    assert callee["duration_ms"] <= internal["duration_ms"] <= caller["duration_ms"]

    waterfall = fargo("traces", trace_id, "--state-dir", str(twin.state_dir)).stdout
    assert f"trace {trace_id}  /api/private-with-alb" in waterfall
    assert "internal (load balancer)*" in waterfall and "backend-private-with-alb" in waterfall


def test_default_sampling_traces_a_request_without_a_header(twin: Twin) -> None:
    # X-Ray's default rule: the first request each second is traced (then 5 %).
    def through_discovery() -> Any:
        assert get(twin, "/api/private").status_code == 200
        listed = traces(twin, "-s", "backend-private")["traces"]
        return next((t for t in listed if t["request"] == "/api/private"), None)

    summary = wait_until(through_discovery, timeout=15, what="a sampled /api/private trace")
    trace = traces(twin, summary["trace_id"])
    discovery = next(s for s in trace["spans"] if s["kind"] == "discovery")
    assert discovery["name"] == "private.backend.microservice.local"
    listed = fargo("traces", "--state-dir", str(twin.state_dir)).stdout
    assert summary["trace_id"] in listed and "TRACE ID" in listed
    # Health checks are not traced: every trace came through the public listener.
    assert all(t["request"].startswith("/api/") for t in traces(twin)["traces"])


def test_service_map_and_filters(twin: Twin) -> None:
    get(
        twin,
        "/api/private-with-alb",
        {"X-Amzn-Trace-Id": "Root=1-00000000-" + "0" * 23 + "1;Sampled=1"},
    )
    client = ControlClient(state.control_socket(twin.state_dir))

    def edge_counted() -> Any:
        graph = asyncio.run(client.get("/service-map"))
        edges = {(e["source"], e["target"]): e for e in graph["edges"]}
        return graph if ("internal", "backend-private-with-alb") in edges else None

    graph = wait_until(edge_counted, timeout=10, what="the internal ALB's edge")
    edges = {(e["source"], e["target"]): e for e in graph["edges"]}
    assert ("client", "public") in edges and ("backend-public", "internal") in edges
    edge = edges[("backend-public", "internal")]
    assert edge["requests"] >= 1 and edge["fault_rate"] == 0.0
    assert set(edge["latency_ms"]) == {"p50", "p95", "p99"}
    assert {n["name"] for n in graph["nodes"]} >= {"client", "public", "internal", "backend-public"}

    assert traces(twin, "--slow", "60s")["traces"] == []
    unknown = fargo("traces", "-s", "nope", "--state-dir", str(twin.state_dir), check=False)
    assert unknown.returncode == 1 and "no service named 'nope'" in unknown.stderr
    missing = fargo(
        "traces", "1-00000000-" + "f" * 24, "--state-dir", str(twin.state_dir), check=False
    )
    assert missing.returncode == 1 and "no trace" in missing.stderr
