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

from fargo.local.control.client import ControlClient
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

    # The load balancers' access-log entries come a little after the segments (the
    # control plane reads Caddy's logs every few hundred ms): then both spans have them.
    def with_entries() -> Any:
        trace = traces(twin, trace_id)
        found = {span["name"]: span for span in trace["spans"]}
        balancers = [found.get("public"), found.get("internal")]
        return trace if all(s is not None and not s["inferred"] for s in balancers) else None

    trace = wait_until(with_entries, timeout=10, what=f"the load balancers' entries of {trace_id}")
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
    # Each load balancer's own timing, from its access-log entry, as ALB's node in X-Ray:
    # its own time (request + response processing), the target it chose, its status.
    groups = twin.status().load_balancers.target_groups
    assert public["target"] in groups["backend-public"].routable
    assert internal["target"] in groups["backend-private-with-alb"].routable
    for balancer, target in ((public, caller), (internal, callee)):
        assert 0.0 < balancer["own_ms"] < balancer["duration_ms"]
        assert balancer["status"] == balancer["target_status"] == 200
        # Caddy's clock and the task's read a little apart: around its target's segment.
        assert balancer["start_time"] <= target["start_time"] + 0.002
        assert balancer["end_time"] >= target["end_time"] - 0.002
    assert callee["duration_ms"] <= internal["duration_ms"] <= caller["duration_ms"]

    waterfall = fargo("traces", trace_id, "--state-dir", str(twin.state_dir)).stdout
    assert f"trace {trace_id}  /api/private-with-alb" in waterfall
    assert "internal (load balancer)  " in waterfall and "backend-private-with-alb" in waterfall
    assert f"→ {public['target']}" in waterfall


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

    # The demo page's console serves the same map and traces.
    console = twin.endpoints.console
    assert console is not None
    page_map = httpx.get(console + "/api/service-map", timeout=10).json()
    assert ("backend-public", "internal") in {(e["source"], e["target"]) for e in page_map["edges"]}
    listed = httpx.get(console + "/api/traces?limit=1", timeout=10).json()["traces"]
    assert len(listed) == 1
    spans = httpx.get(console + f"/api/traces/{listed[0]['trace_id']}", timeout=10).json()["spans"]
    assert spans and all("parent_id" in span for span in spans)

    assert traces(twin, "--slow", "60s")["traces"] == []
    unknown = fargo("traces", "-s", "nope", "--state-dir", str(twin.state_dir), check=False)
    assert unknown.returncode == 1 and "no service named 'nope'" in unknown.stderr
    missing = fargo(
        "traces", "1-00000000-" + "f" * 24, "--state-dir", str(twin.state_dir), check=False
    )
    assert missing.returncode == 1 and "no trace" in missing.stderr
