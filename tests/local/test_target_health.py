"""Target health checks on a fast clock: frequent checks, but time enough to answer."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from fargo.local.clock import TwinClock
from fargo.local.elb.target_health import (
    HealthChecker,
    Target,
    TargetRegistration,
    TargetState,
    check_timeout,
)
from fargo.spec.elb import HealthCheck


@pytest.mark.parametrize(
    ("interval", "timeout", "time_scale", "expected"),
    [
        (30, 5, 0.1, 2.0),  # ALB defaults: 0.5 s would fail a busy target; 2 s at least
        (30, 20, 0.1, 2.0),  # scaled past 2 s already
        (300, 120, 0.1, 12.0),
        (5, 2, 0.1, 0.5),  # never past the scaled interval: the next check is due
        (10, 2, 0.1, 1.0),
        (30, 5, 1.0, 5.0),  # AWS timings: the spec's own timeout
        (6, 5, 1.0, 5.0),
        (30, 5, 0.05, 1.5),
    ],
)
def test_check_timeout_scales_less_than_the_interval(
    interval: int, timeout: int, time_scale: float, expected: float
) -> None:
    check = HealthCheck(interval=interval, timeout=timeout)
    assert check_timeout(check, TwinClock(time_scale)) == pytest.approx(expected)


async def serve(delay: float) -> tuple[web.AppRunner, int]:
    async def health(_: web.Request) -> web.Response:
        await asyncio.sleep(delay)  # the behaviour under test: a target slow to answer
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/health", health)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, port


async def first_state(delay: float, check: HealthCheck, time_scale: float) -> TargetRegistration:
    """Register a target answering after ``delay`` seconds; its state after the first check."""
    runner, port = await serve(delay)
    changed = asyncio.Event()
    checker = HealthChecker(clock=TwinClock(time_scale), on_transition=lambda *_: changed.set())
    registration = TargetRegistration(Target("t1", "127.0.0.1", port))
    checker.start()
    try:
        checker.start_checks("group", registration, check)
        async with asyncio.timeout(10):
            await changed.wait()
    finally:
        await checker.stop()
        await runner.cleanup()
    return registration


async def test_a_slow_but_timely_target_passes_on_the_fast_clock() -> None:
    # 0.7 s is beyond the 0.5 s a plainly scaled 5 s timeout would allow, within 2 s
    check = HealthCheck(path="/health", interval=30, timeout=5, unhealthy_threshold=2)
    registration = await first_state(0.7, check, time_scale=0.1)
    assert registration.state is TargetState.HEALTHY


@pytest.mark.slow  # the target answers after 1 s
async def test_a_target_slower_than_the_timeout_fails() -> None:
    check = HealthCheck(path="/health", interval=5, timeout=2, unhealthy_threshold=2)
    registration = await first_state(1.0, check, time_scale=0.1)  # timeout 0.5 s
    assert registration.state is TargetState.UNHEALTHY
    assert registration.reason == "Target.Timeout"
