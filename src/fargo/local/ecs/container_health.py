"""The container health check ECS runs inside a task: HTTP GET on the container port.

    await watch_container_health(task, check, http=session, clock=TwinClock(0.1),
                                 on_change=changed)

Timing rule: the interval and the start period run on the twin's clock; the timeout
is scaled too but never below `MIN_TIMEOUT_SECONDS`,
so a busy machine does not fail healthy tasks (AWS's 5 s at 0.1 would be 0.5 s).
A check may take longer than the scaled interval; then the next one starts when it
has finished — checks never overlap.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fargo.local.clock import TwinClock
from fargo.local.ecs.task import HealthStatus, Task, TaskStatus
from fargo.spec.model import ContainerHealthCheck

if TYPE_CHECKING:
    import aiohttp  # loaded by the checks: the CLI reads the user agent without it

MIN_TIMEOUT_SECONDS = 2.0  # ECS's own minimum for a container health check timeout
# On ECS the check is a command in the container (curl, say); the twin's says what it is,
# so `fargo logs --no-health-checks` can hide it as it hides the load balancers' checks.
CONTAINER_HEALTH_CHECK_USER_AGENT = "fargo-container-health-check"


@dataclass(frozen=True)
class CheckTiming:
    """A container health check's timings on the twin's clock, in seconds."""

    interval: float
    timeout: float
    start_period: float

    @classmethod
    def of(cls, check: ContainerHealthCheck, clock: TwinClock) -> CheckTiming:
        return cls(
            interval=clock.interval(check.interval),
            timeout=max(clock.interval(check.timeout), MIN_TIMEOUT_SECONDS),
            start_period=clock.interval(check.start_period),
        )


async def watch_container_health(
    task: Task,
    check: ContainerHealthCheck,
    *,
    http: aiohttp.ClientSession,
    clock: TwinClock,
    on_change: Callable[[Task], None],
) -> None:
    """Check ``task`` until it stops or turns unhealthy; ``on_change`` hears each new status.

    As ECS: one passing check makes the task healthy; ``retries`` failures in a row
    (not counted during the start period) make it unhealthy.
    """
    import aiohttp

    timing = CheckTiming.of(check, clock)
    url = f"http://{task.ip}:{task.port}{check.path}"
    timeout = aiohttp.ClientTimeout(total=timing.timeout)
    loop = asyncio.get_running_loop()
    started = loop.time()
    failures = 0
    while task.desired_status is TaskStatus.RUNNING:
        began = loop.time()
        healthy = False
        with contextlib.suppress(aiohttp.ClientError, TimeoutError, OSError):
            headers = {"User-Agent": CONTAINER_HEALTH_CHECK_USER_AGENT}
            async with http.get(url, timeout=timeout, headers=headers) as response:
                healthy = response.status < 400
        in_start_period = began - started < timing.start_period
        failures = 0 if healthy else failures + (0 if in_start_period else 1)
        status = task.health
        if healthy:
            status = HealthStatus.HEALTHY
        elif failures >= check.retries:
            status = HealthStatus.UNHEALTHY
        if status is not task.health and task.desired_status is TaskStatus.RUNNING:
            task.health = status
            on_change(task)
            if status is HealthStatus.UNHEALTHY:
                return
        await asyncio.sleep(max(0.0, timing.interval - (loop.time() - began)))
