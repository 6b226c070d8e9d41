"""The Caddy watchdog with a real Caddy: it never gives up, and a hung Caddy is replaced.

A restart that fails with an `OSError` (Caddy's log file cannot be opened) is retried with
back-off and told once; a Caddy stopped with SIGSTOP is found within seconds, killed and
started again on the same listening sockets, so a connection made meanwhile is served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from tests.local.conftest import balancer_spec, caddy_elb, caddy_of, free_port, loopback
from tests.local.test_limits import LOW_SOFT_LIMIT, caddy_open_files, low_soft_limit, open_files
from tests.waiting import until

from fargo.local.caddy.data_plane import CaddyDataPlane
from fargo.local.caddy.process import HANG_SECONDS, CaddyProcess
from fargo.local.elb.load_balancing import ElasticLoadBalancing, Target
from fargo.local.status import DataPlaneState, DataPlaneStatus

__all__ = ["low_soft_limit"]  # a fixture, used by name

pytestmark = pytest.mark.timeout(60)

LOAD_BALANCERS = """
  public:
    scheme: internet-facing
    listeners:
      - port: 80
        protocol: HTTP
        default_action: {forward: app}
"""
TEAPOT_RULE = """        rules:
          - priority: 1
            conditions: [{path_pattern: [/teapot]}]
            action: {fixed_response: {status_code: 418, message_body: short and stout}}
"""
TARGET_GROUPS = "  app: {health_check: {path: /health, interval: 300, timeout: 120}}"


@dataclass
class Twin:
    elb: ElasticLoadBalancing
    url: str

    @property
    def caddy(self) -> CaddyProcess:
        return caddy_of(self.elb)

    def data_plane(self) -> DataPlaneStatus:
        (described,) = self.elb.describe().data_planes
        return described

    async def get(self, path: str = "/") -> tuple[int, str]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                self.url + path.lstrip("/"), timeout=aiohttp.ClientTimeout(total=30)
            ) as response,
        ):
            return response.status, await response.text()


@pytest.fixture
async def twin(state_dir: Path) -> AsyncIterator[Twin]:
    spec = balancer_spec("watchdog", LOAD_BALANCERS, TARGET_GROUPS)
    ip = loopback()
    port = free_port(ip)
    elb = caddy_elb(
        spec,
        state_dir=state_dir,
        bind={"public": ip},
        listener_port=lambda lb, _: port,
        certificate=None,
    )

    async def answer(request: web.Request) -> web.Response:
        return web.Response(text="app")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await elb.start()
        target_port = random.randint(20000, 60000)
        for _ in range(20):
            target_ip = loopback()
            try:
                await web.TCPSite(runner, target_ip, target_port).start()
                break
            except OSError:
                continue
        elb.register_targets("app", [Target("app", target_ip, target_port)])
        await elb.wait_healthy("app")
        yield Twin(elb, f"http://{ip}:{port}/")
    finally:
        await elb.stop()
        await runner.cleanup()


async def test_a_restart_that_fails_with_an_os_error_is_retried_and_told_once(
    twin: Twin, caplog: pytest.LogCaptureFixture, low_soft_limit: int
) -> None:
    caplog.set_level(logging.INFO, logger="fargo")
    caddy = twin.caddy
    first = caddy.pid
    assert first is not None
    # Caddy's log cannot be opened (IsADirectoryError, for root as for anyone): every
    # relaunch fails with an OSError until it can.
    caddy.log_path.rename(caddy.log_path.with_suffix(".old"))
    caddy.log_path.mkdir()
    os.kill(first, signal.SIGKILL)

    await until(lambda: caddy.failed_restarts >= 4, timeout=20, what="four failed restarts")
    plane = twin.data_plane()
    assert plane.state is DataPlaneState.DOWN and plane.pid is None
    assert plane.problem is not None and "Is a directory" in plane.problem, plane.problem
    failures = [r for r in caplog.records if "restarting caddy failed" in r.getMessage()]
    assert len(failures) == 1, [r.getMessage() for r in failures]  # told once, not a flood

    # A new rule meanwhile: its pushes fail until Caddy is back, told once per cause.
    loads = caddy.loads
    twin.elb.reconfigure(balancer_spec("watchdog", LOAD_BALANCERS + TEAPOT_RULE, TARGET_GROUPS))
    plane = twin.elb.data_plane
    assert isinstance(plane, CaddyDataPlane)
    await until(lambda: plane.failed_pushes >= 4, timeout=20, what="four failed pushes")
    assert 1 <= len(_told(caplog, "pushing the load balancer config failed")) <= 2  # per cause

    caddy.log_path.rmdir()
    await until(lambda: caddy.restarts == 1, timeout=20, what="caddy relaunched")
    assert await twin.get() == (200, "app")
    await until(lambda: caddy.loads > loads, timeout=10, what="the new rule loaded")
    assert await twin.get("/teapot") == (418, "short and stout")
    assert _told(caplog, "load balancer config pushed after")
    assert twin.data_plane().state is DataPlaneState.SERVING
    assert any("failed attempts" in r.getMessage() for r in caplog.records)
    # The relaunched Caddy runs at the highest open-file limit it may have too.
    assert caddy.pid is not None
    soft, hard = open_files(caddy.pid)
    assert soft == hard == caddy_open_files(low_soft_limit) and soft > LOW_SOFT_LIMIT


async def test_a_stopped_caddy_is_found_killed_and_started_again_on_the_same_sockets(
    twin: Twin,
) -> None:
    caddy = twin.caddy
    stopped = caddy.pid
    assert stopped is not None
    assert await twin.get() == (200, "app")
    os.kill(stopped, signal.SIGSTOP)
    began = time.monotonic()
    try:
        # A request made while Caddy is stopped waits in the listener's queue.
        waiting = asyncio.create_task(twin.get())
        await until(
            lambda: twin.data_plane().state is DataPlaneState.DOWN,
            timeout=HANG_SECONDS,
            what="the data plane reported down",
        )
        problem = twin.data_plane().problem
        assert problem is not None and "has not answered its admin API" in problem
        await until(
            lambda: caddy.pid not in (None, stopped), timeout=HANG_SECONDS + 10, what="a new caddy"
        )
        found_after = time.monotonic() - began
        assert found_after < HANG_SECONDS + 3
        assert await waiting == (200, "app")  # not refused: the new Caddy took it over
        assert await twin.get() == (200, "app")
        # Counted once the new Caddy's admin API answered (it may serve a moment before).
        await until(lambda: caddy.restarts == 1, timeout=5, what="the restart counted")
        assert twin.data_plane().state is DataPlaneState.SERVING
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(stopped, signal.SIGCONT)


async def test_a_caddy_that_exits_while_the_twin_stops_is_not_started_again(twin: Twin) -> None:
    """The load balancers stop after the tasks; a Caddy killed meanwhile (`fargo down`'s
    sweep of a stop that takes too long) would otherwise be restarted and outlive the twin."""
    caddy = twin.caddy
    pid = caddy.pid
    assert pid is not None
    twin.elb.data_plane.stop_restarting()
    os.kill(pid, signal.SIGKILL)
    await asyncio.sleep(2)  # a restart comes within 0.1 s of the exit
    assert caddy.pid in (None, pid) and caddy.restarts == 0  # no new Caddy


def _told(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]
