"""backend-public over real sockets, calling real backend-private processes."""

from __future__ import annotations

import time

import httpx
import pytest

from testkit import FakeCallee, PrivateTasks, Spawn, free_port

pytestmark = pytest.mark.slow  # starts service processes: the full suite runs it


def test_health_check_and_public_route(spawn: Spawn) -> None:
    public = spawn("backend_public")

    assert httpx.get(public.url + "/").status_code == 200
    response = httpx.get(public.url + "/api/public")
    assert response.status_code == 200
    assert response.text == "Hello world"
    assert response.headers["content-type"].startswith("text/plain")
    assert httpx.get(public.url + "/api/nope").status_code == 404


def test_private_routes_relay_the_callee_task_id(spawn: Spawn, private_tasks: PrivateTasks) -> None:
    first, second = private_tasks.addresses
    public = spawn(
        "backend_public",
        env={
            "PRIVATE_DISCOVERY_URL": f"http://{first}:{private_tasks.port}",
            "PRIVATE_ALB_URL": f"http://{second}:{private_tasks.port}",
        },
    )

    via_discovery = httpx.get(public.url + "/api/private")
    via_alb = httpx.get(public.url + "/api/private-with-alb")

    assert (via_discovery.status_code, via_discovery.text) == (200, "TaskId: task-a")
    assert (via_alb.status_code, via_alb.text) == (200, "TaskId: task-b")


def test_host_and_trace_headers_reach_the_callee(spawn: Spawn) -> None:
    with FakeCallee() as callee:
        public = spawn("backend_public", env={"PRIVATE_DISCOVERY_URL": callee.url})

        httpx.get(public.url + "/api/private", headers={"X-Amzn-Trace-Id": "Root=1-trace"})

    path, headers = callee.requests[0]
    assert path == "/endpoint"
    assert headers["host"] == f"127.0.0.1:{callee.port}"
    assert headers["x-amzn-trace-id"] == "Root=1-trace"


def test_refused_callee_is_502_naming_it_and_unset_url_is_503(spawn: Spawn) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    public = spawn("backend_public", env={"PRIVATE_DISCOVERY_URL": dead})

    refused = httpx.get(public.url + "/api/private")
    unset = httpx.get(public.url + "/api/private-with-alb")

    assert refused.status_code == 502
    assert refused.json()["callee"] == f"{dead}/endpoint"
    assert "Connection refused" in refused.json()["error"]
    assert unset.status_code == 503
    assert unset.json() == {"error": "PRIVATE_ALB_URL is not set"}


def test_slow_callee_is_504_after_the_read_timeout(spawn: Spawn) -> None:
    with FakeCallee(hold=True) as callee:
        public = spawn(
            "backend_public",
            env={"PRIVATE_ALB_URL": callee.url, "DOWNSTREAM_READ_TIMEOUT": "0.3"},
        )

        started = time.monotonic()
        response = httpx.get(public.url + "/api/private-with-alb", timeout=10)
        elapsed = time.monotonic() - started

    assert response.status_code == 504
    assert response.json()["callee"] == f"{callee.url}/endpoint"
    assert "0.3s" in response.json()["error"]
    assert elapsed < 3
