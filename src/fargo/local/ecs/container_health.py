"""The container health check ECS runs inside a task: an HTTP GET on the container port,
or the task definition's command.

    probe = http_probe(task, "/", http=session)            # or
    probe = CommandProbe(task, ["/bin/sh", "-c", "curl -f localhost:8080/"], namespaced=True)
    await watch_container_health(task, check, probe=probe, clock=TwinClock(0.1),
                                 on_change=changed)

A command runs as Docker runs a health check, like ``docker exec``: in the task's
namespaces (VPC mode), with its environment and working directory, as its user
(`fargo.local.ecs.task_exec`); exit status 0 is healthy, anything else (a program the
task does not have, a timeout or the task's end: the command is killed) unhealthy. The
first KiB of a failed check's output is kept for the log.

Timing rule: the interval and the start period run on the twin's clock; the timeout
is scaled too but never below `MIN_TIMEOUT_SECONDS`,
so a busy machine does not fail healthy tasks (AWS's 5 s at 0.1 would be 0.5 s).
A check may take longer than the scaled interval; then the next one starts when it
has finished — checks never overlap.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from asyncio import FIRST_COMPLETED
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fargo.local.clock import TwinClock
from fargo.local.ecs.process import signal_group
from fargo.local.ecs.task import HealthStatus, Task, TaskStatus
from fargo.local.ecs.task_exec import ExecError, ExecTarget, credentials, entered, exec_argv
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


# A check: whether the task is healthy, answered within the timeout given (seconds).
Probe = Callable[[float], Awaitable[bool]]
MAX_OUTPUT_BYTES = 1024  # of a failed check's output, kept for the log (Docker: 4 KiB)
OUTPUT_GRACE_SECONDS = 0.5  # a grandchild in a session of its own may hold the pipe


def http_probe(task: Task, path: str, *, http: aiohttp.ClientSession) -> Probe:
    """GET ``path`` on the task's container port: healthy below status 400."""
    import aiohttp

    url = f"http://{task.ip}:{task.port}{path}"
    headers = {"User-Agent": CONTAINER_HEALTH_CHECK_USER_AGENT}

    async def probe(timeout: float) -> bool:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError, OSError):
            limit = aiohttp.ClientTimeout(total=timeout)
            async with http.get(url, timeout=limit, headers=headers) as response:
                return response.status < 400
        return False

    return probe


class CommandProbe:
    """Run ``argv`` in the task (``namespaced``: in its network and mount namespaces, VPC
    mode) as the task's user: healthy when it exits 0 within the timeout. ``failure``: why
    the last check failed, with the first KiB of its output, for the log."""

    def __init__(self, task: Task, argv: Sequence[str], *, namespaced: bool) -> None:
        self.task = task
        self.argv = list(argv)
        self.namespaced = namespaced
        self.failure = ""

    async def __call__(self, timeout: float) -> bool:
        task = self.task
        if task.pid is None or task.desired_status is not TaskStatus.RUNNING:
            return False  # a pid of a task that ended may be another process's by now
        try:
            target = ExecTarget.read(task.pid, what=f"task {task.id}")
            command = exec_argv(target, self.argv, network=self.namespaced, as_task_user=True)
            inside = entered(target, network=self.namespaced)
            running = await asyncio.create_subprocess_exec(
                *command,
                env=target.environment,
                cwd=None if inside else target.cwd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                **({} if inside else credentials(target)),  # type: ignore[arg-type]
            )
        except ExecError as err:
            self.failure = str(err)
            return False
        except OSError as err:  # a program the task does not have
            self.failure = f"{self.argv[0]}: {err.strerror or err}"
            return False
        assert running.stdout is not None
        reading = asyncio.ensure_future(running.stdout.read(MAX_OUTPUT_BYTES))
        exited = asyncio.ensure_future(running.wait())
        stopped = asyncio.ensure_future(task.stopped.wait())  # the task ended: no waiting
        try:
            await asyncio.wait({exited, stopped}, timeout=timeout, return_when=FIRST_COMPLETED)
        finally:
            stopped.cancel()
            signal_group(running.pid, signal.SIGKILL)  # what it started, too
            code = await exited if exited.done() else None
            await running.wait()
            output = b""
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                output = await asyncio.wait_for(reading, OUTPUT_GRACE_SECONDS)
        if code == 0:
            return True
        ended = f"exit status {code}" if code is not None else f"no answer in {timeout:g} s"
        text = output.decode(errors="replace").strip()
        self.failure = f"{ended}: {text}" if text else ended
        return False


async def watch_container_health(
    task: Task,
    check: ContainerHealthCheck,
    *,
    probe: Probe,
    clock: TwinClock,
    on_change: Callable[[Task], None],
) -> None:
    """Check ``task`` with ``probe`` until it stops or turns unhealthy; ``on_change``
    hears each new status.

    As ECS: one passing check makes the task healthy; ``retries`` failures in a row
    (not counted during the start period) make it unhealthy.
    """
    timing = CheckTiming.of(check, clock)
    loop = asyncio.get_running_loop()
    started = loop.time()
    failures = 0
    while task.desired_status is TaskStatus.RUNNING:
        began = loop.time()
        healthy = await probe(timing.timeout)
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
