"""The console (`fargo.local.console`) over a real socket: its JSON, its guard (Host,
Origin, CORS preflight) and its refusals, against a twin described by hand."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from tests.local.console_twin import PAGE, ROOT, SPEC, HandTwin, PointsRun, twin_status

from fargo.local.appautoscaling.metrics import Datapoint
from fargo.local.cli.status_view import render_endpoints
from fargo.local.config import TwinConfig
from fargo.local.console.architecture import architecture
from fargo.local.console.burst import BurstRefused, BurstRequest, latency_statistics
from fargo.local.console.explain import explain, route_services
from fargo.local.console.server import Console, allowed_origins
from fargo.local.events import configure_logging, remove_handlers
from fargo.local.runtime import Runtime
from fargo.local.status import Endpoints, TwinStatus


@pytest.fixture
def twin(tmp_path: Path) -> HandTwin:
    return HandTwin(tmp_path)


@pytest.fixture
def points() -> PointsRun:
    return PointsRun()


@pytest.fixture
async def console(twin: HandTwin, points: PointsRun) -> AsyncIterator[Console]:
    served = Console(twin, run_points=points)
    await served.start()
    try:
        yield served
    finally:
        await served.stop()


async def call(
    console: Console, method: str, path: str, **kwargs: Any
) -> tuple[int, dict[str, str], Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, f"{console.url}{path}", **kwargs) as response,
    ):
        text = await response.text()
        return response.status, dict(response.headers), json.loads(text) if text else None


def test_the_architecture_is_drawn_from_the_spec_with_live_tasks(tmp_path: Path) -> None:
    drawn = architecture(SPEC, twin_status(tmp_path))

    assert drawn["vpc"] == {
        "cidr": "10.0.0.0/16",
        "availability_zones": ["us-east-1a", "us-east-1b"],
        "vpc_endpoints": [],
    }
    assert [(s["name"], s["cidr"], s["availability_zone"]) for s in drawn["subnets"]] == [
        ("public-a", "10.0.0.0/24", "us-east-1a"),
        ("public-b", "10.0.1.0/24", "us-east-1b"),
        ("private-a", "10.0.10.0/24", "us-east-1a"),
        ("private-b", "10.0.11.0/24", "us-east-1b"),
    ]
    assert drawn["nat_gateways"] == [
        {"name": "nat-a", "availability_zone": "us-east-1a", "subnet": "public-a"}
    ]
    public, internal = drawn["load_balancers"]
    assert (public["name"], public["scheme"], internal["scheme"]) == (
        "public",
        "internet-facing",
        "internal",
    )
    https = public["listeners"][0]
    assert (https["protocol"], https["url"]) == ("HTTPS", PAGE)
    assert https["rules"] == [
        {
            "priority": 1,
            "conditions": ["path-pattern /api/*"],
            "action": "forward backend-public",
            "target_groups": ["backend-public"],
        }
    ]
    assert public["target_groups"] == [
        {"name": "backend-public", "services": ["backend-public"]},
        {"name": "frontend", "services": ["frontend"]},
    ]
    assert [s["name"] for s in drawn["services"]] == list(SPEC.services)
    private = drawn["services"][2]
    assert private["discovery"] == "private.backend.microservice.local"
    assert [t["availability_zone"] for t in private["tasks"]] == ["us-east-1b", "us-east-1a"]
    with_alb = drawn["services"][3]
    assert with_alb["autoscaling"]["max_capacity"] == 4
    assert with_alb["tasks"][0]["target_health"] == {"backend-private-with-alb": "healthy"}
    assert drawn["discovery"]["services"][0]["service"] == "backend-private"
    assert len(drawn["discovery"]["services"][0]["instances"]) == 2
    json.dumps(drawn)  # JSON as it is


async def test_architecture_and_status_are_served_as_json(console: Console) -> None:
    status, headers, drawn = await call(console, "GET", "/api/architecture")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert [s["name"] for s in drawn["services"]] == list(SPEC.services)

    status, _, described = await call(console, "GET", "/api/status")
    assert status == 200
    assert TwinStatus.model_validate(described).service("frontend").healthy == 1


async def test_points_run_once_for_callers_within_a_few_seconds(
    console: Console, points: PointsRun
) -> None:
    _, _, first = await call(console, "GET", "/api/points")
    _, _, second = await call(console, "GET", "/api/points")

    assert points.runs == 1
    assert (first["passed"], first["failed"], first["skipped"]) == (1, 0, 1)
    assert first["points"][0] == {
        "number": 2,
        "title": "two",
        "status": "pass",
        "evidence": {"task_ids": {"a": 1}},
    }
    assert second["age_seconds"] >= first["age_seconds"]


async def test_events_are_the_latest_and_scaling_activities_are_marked(
    console: Console, twin: HandTwin
) -> None:
    lines = [
        {
            "time": f"2026-01-01T00:00:0{n}.000Z",
            "level": "INFO",
            "source": "service",
            "subject": "backend-private-with-alb",
            "message": f"started task {n}",
        }
        for n in range(5)
    ]
    lines.append(
        {
            **lines[0],
            "message": "Application Auto Scaling: CPUUtilization 86 % > 70 % target for 3 "
            "datapoints: 2 → 3 tasks",
        }
    )
    (twin.state_dir / "events.jsonl").write_text(
        "".join(json.dumps(line) + "\n" for line in lines) + '{"cut by a cra'
    )

    status, _, answer = await call(console, "GET", "/api/events?limit=3")

    assert status == 200
    assert [e["message"] for e in answer["events"]] == [
        "started task 3",
        "started task 4",
        lines[-1]["message"],
    ]
    assert [e["message"] for e in answer["scaling"]] == [lines[-1]["message"]]
    assert (await call(console, "GET", "/api/events?limit=0"))[0] == 400


async def test_a_scaling_activity_the_scaler_makes_is_marked_as_one(
    console: Console, twin: HandTwin
) -> None:
    """The scaler's own event, not a copy of its text: three CPU datapoints above the
    target of backend-private-with-alb (`ApplicationAutoScaling.evaluate`), logged to the
    events file as the control plane logs it, are a scaling activity on the page."""
    config = TwinConfig(
        spec_path=ROOT / "fargo.yaml", state_dir=twin.state_dir, network_mode="loopback"
    )
    scaler = Runtime(SPEC, config).autoscaling  # its cluster's schedulers, none started
    target = scaler.targets["backend-private-with-alb"]
    handlers = configure_logging(twin.state_dir, console=None)
    try:
        for minute in range(3):
            scaler.evaluate(target, Datapoint(cpu=86.0, memory=10.0), now=60.0 * minute)
    finally:
        remove_handlers(handlers)

    status, _, answer = await call(console, "GET", "/api/events")

    assert status == 200
    scaled = "Application Auto Scaling: CPUUtilization 86 % > 70 % target for 3 datapoints"
    assert [(e["subject"], e["message"]) for e in answer["scaling"]] == [
        ("backend-private-with-alb", f"{scaled}: 2 → 3 tasks")
    ]
    assert [e["scaling"] for e in answer["events"]] == [True]


@pytest.mark.parametrize("name", ["metrics", "traces", "service-map"])
async def test_a_missing_source_is_a_404_that_says_so(console: Console, name: str) -> None:
    status, _, answer = await call(console, "GET", f"/api/{name}")

    assert status == 404
    assert answer["available"] is False
    assert "not available" in answer["error"]


async def test_a_source_the_runtime_has_is_served(console: Console) -> None:
    async def metrics(query: Any) -> dict[str, Any]:
        return {"series": [], "asked": dict(query)}

    console.sources["metrics"] = metrics

    _, _, index = await call(console, "GET", "/api")
    assert index["sources"]["metrics"] == {"available": True, "path": "/api/metrics"}
    assert index["sources"]["traces"]["available"] is False
    assert "traces are not available in this twin" in index["sources"]["traces"]["message"]

    status, _, answer = await call(console, "GET", "/api/metrics?minutes=5")
    assert (status, answer) == (200, {"series": [], "asked": {"minutes": "5"}})


async def test_the_demo_pages_origin_may_call_and_others_may_not(console: Console) -> None:
    for origin in (PAGE, "https://localhost:19443"):
        status, headers, _ = await call(console, "GET", "/api/status", headers={"Origin": origin})
        assert (status, headers["Access-Control-Allow-Origin"]) == (200, origin)

    status, headers, answer = await call(
        console, "GET", "/api/status", headers={"Origin": "https://evil.example"}
    )
    assert status == 403
    assert "Access-Control-Allow-Origin" not in headers
    assert PAGE in answer["error"]
    # The internal load balancer serves no page.
    refused = await call(
        console, "GET", "/api/status", headers={"Origin": "http://127.0.10.4:8090"}
    )
    assert refused[0] == 403


async def test_a_preflight_allows_the_burst_from_the_page(console: Console) -> None:
    status, headers, _ = await call(
        console,
        "OPTIONS",
        "/api/burst",
        headers={
            "Origin": PAGE,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
            "Access-Control-Request-Private-Network": "true",
        },
    )

    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == PAGE
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert headers["Access-Control-Allow-Headers"] == "Content-Type"
    assert headers["Access-Control-Allow-Private-Network"] == "true"


async def test_a_request_for_another_host_name_is_refused(console: Console) -> None:
    # A page whose DNS name was rebound to 127.0.0.1 sends its own name as the Host.
    status, _, answer = await call(
        console, "GET", "/api/status", headers={"Host": f"rebound.example:{console.port}"}
    )

    assert status == 403
    assert "answers at 127.0.0.1" in answer["error"]


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"route": "https://elsewhere/", "count": 5}, "route: a path"),
        ({"route": "//elsewhere/x", "count": 5}, "route: a path"),
        ({"route": "/api/public", "count": 0}, "count: a whole number from 1 to 200"),
        ({"route": "/api/public", "count": 201}, "count: a whole number from 1 to 200"),
        ({"route": "/api/public", "count": True}, "count: a whole number"),
        (["/api/public"], "a JSON object"),
    ],
)
async def test_a_bad_burst_is_refused_with_its_reason(
    console: Console, body: object, why: str
) -> None:
    status, _, answer = await call(console, "POST", "/api/burst", json=body)

    assert status == 400
    assert why in answer["error"]


async def test_a_burst_takes_json_only(console: Console) -> None:
    # A form or text/plain POST needs no preflight: the console does not take one.
    status, _, answer = await call(
        console, "POST", "/api/burst", data="route=/api/public", headers={"Origin": PAGE}
    )

    assert status == 415
    assert "send JSON" in answer["error"]


async def test_nothing_else_changes_anything(console: Console) -> None:
    for path in ("/api/status", "/api/points", "/api/architecture", "/down", "/api/scale"):
        status, _, _ = await call(console, "POST", path, json={})
        assert status in (404, 405), path


def test_burst_statistics_are_nearest_rank_percentiles() -> None:
    latencies = [float(n) for n in range(1, 101)]

    assert latency_statistics(latencies) == {
        "min": 1.0,
        "p50": 50.0,
        "p95": 95.0,
        "max": 100.0,
        "mean": 50.5,
    }
    assert latency_statistics([]) is None
    assert BurstRequest.parse({"route": "/api/private?x=1"}) == BurstRequest("/api/private?x=1", 20)
    with pytest.raises(BurstRefused):
        BurstRequest.parse({"route": "/api/ private", "count": 1})


def test_allowed_origins_are_the_internet_facing_listeners() -> None:
    endpoints = Endpoints(
        load_balancers={
            "public": ["https://127.0.0.1:443", "http://127.0.0.1:8080"],
            "internal": ["http://127.0.10.4:8090"],
        },
        discovery_dns_server="127.0.0.53:53",
        ca_certificate=Path("ca.pem"),
    )

    assert allowed_origins(SPEC, endpoints) == {
        "https://127.0.0.1",
        "https://localhost",
        "http://127.0.0.1:8080",
        "http://localhost:8080",
    }


def test_a_failing_route_is_explained_by_the_service_lacking_tasks(tmp_path: Path) -> None:
    failing = twin_status(tmp_path, private_healthy=False)

    assert route_services(SPEC, failing, "/api/private") == ["backend-public", "backend-private"]
    assert explain(SPEC, failing, "/api/private") == (
        "backend-private has 0 healthy tasks (2 desired, FAILING; last stop: Essential "
        "container in task exited (exit code 1)) — see `fargo status`"
    )
    assert explain(SPEC, failing, "/api/public") is None
    # backend-private-with-alb has 1 of its 2 tasks.
    assert explain(SPEC, failing, "/api/private-with-alb") == (
        "backend-private-with-alb has 1 healthy task (2 desired, FAILING) — see `fargo status`"
    )


async def test_explain_is_served_for_the_page(console: Console, twin: HandTwin) -> None:
    twin.status = twin_status(twin.state_dir, private_healthy=False)

    status, _, answer = await call(console, "GET", "/api/explain?route=/api/private")

    assert status == 200
    assert answer["explanation"].startswith("backend-private has 0 healthy tasks")


async def test_a_traces_spans_come_from_the_trace_source(console: Console) -> None:
    async def trace(query: Any) -> dict[str, Any]:
        if query["trace_id"] != "1-abc-def":
            raise LookupError(f"no trace {query['trace_id']} is kept")
        return {"trace_id": query["trace_id"], "spans": []}

    assert (await call(console, "GET", "/api/traces/1-abc-def"))[0] == 404  # no source yet
    console.sources["trace"] = trace

    status, _, answer = await call(console, "GET", "/api/traces/1-abc-def")
    assert (status, answer) == (200, {"trace_id": "1-abc-def", "spans": []})
    status, _, answer = await call(console, "GET", "/api/traces/1-other")
    assert (status, answer) == (404, {"error": "no trace 1-other is kept"})


def test_fargo_status_lists_the_console(tmp_path: Path) -> None:
    status = twin_status(tmp_path)
    endpoints = status.endpoints.model_copy(update={"console": "http://127.0.0.1:40123"})

    shown = render_endpoints(status.model_copy(update={"endpoints": endpoints}))

    assert "  console (demo page API)  http://127.0.0.1:40123" in shown.splitlines()
    assert "console (demo page API)" not in render_endpoints(status)  # not started: not listed


async def test_a_source_may_answer_without_awaiting(console: Console) -> None:
    console.sources["service-map"] = lambda query: {"nodes": [], "edges": [], "traces": 0}

    status, _, answer = await call(console, "GET", "/api/service-map")

    assert (status, answer) == (200, {"nodes": [], "edges": [], "traces": 0})


async def test_a_sources_refusal_is_a_json_error(console: Console) -> None:
    def traces(query: Any) -> dict[str, Any]:
        limit = int(query.get("limit", "20"))  # ValueError for ?limit=x
        if "service" in query:
            raise LookupError(f"no service named {query['service']!r}")
        return {"kept": 0, "traces": [], "limit": limit}

    console.sources["traces"] = traces

    status, _, answer = await call(console, "GET", "/api/traces?limit=x")
    assert status == 400 and answer["error"].startswith("/api/traces?limit=x: invalid literal")
    status, _, answer = await call(console, "GET", "/api/traces?service=nope")
    assert (status, answer) == (404, {"error": "no service named 'nope'"})
