"""The ECS scheduler with real processes, a real registry and loopback network, and
fake task hooks (no load balancers or Cloud Map).

The helpers here (`Harness`, `make_harness`) are shared with ``test_deployment.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import re
import signal
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from fargo.local.cli import status_view
from fargo.local.clock import TwinClock
from fargo.local.ec2.loopback import LoopbackNetwork
from fargo.local.ecr.distribution import RegistryServer
from fargo.local.ecr.puller import RegistryPuller
from fargo.local.ecr.registry import ImageManifest, LocalRegistry
from fargo.local.ecs.cluster import CRASH_LOOP_LIMIT, Cluster, ServiceScheduler
from fargo.local.ecs.container_health import MIN_TIMEOUT_SECONDS, CheckTiming
from fargo.local.ecs.secrets import TaskSecrets
from fargo.local.ecs.task import HealthStatus, Task, TaskStatus
from fargo.local.state import folder as state
from fargo.local.status import ServiceState, ServiceStatus, TaskSummary, readiness_of
from fargo.spec import parse_spec
from fargo.spec.model import ContainerHealthCheck

TIME_SCALE = 0.01  # container checks every 0.3 s, ELB grace period 0.6 s

# A task whose behaviour its image (mode.txt) or environment (MODE) chooses.
APP = r"""
import http.server, os, signal, sys, time

mode = os.environ.get("MODE") or open("mode.txt").read().strip()
print(f"starting in mode {mode}", flush=True)
if mode == "crash":
    print("database password missing", flush=True)
    sys.exit(3)
if mode == "silent":
    time.sleep(3600)  # the behaviour under test: a task that never listens
if mode in ("stubborn", "orphan"):
    child = os.fork()
    if child == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(3600)  # the behaviour under test: a child that outlives SIGTERM
        os._exit(0)
    print(f"child {child}", flush=True)
if mode == "orphan":
    sys.exit(1)
if mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(404 if self.path == "/missing" else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


address = (os.environ["HOST"], int(os.environ["PORT"]))
http.server.ThreadingHTTPServer(address, Handler).serve_forever()
"""


class FakeHooks:
    """`TaskHooks` without load balancers: records what the scheduler asks for."""

    def __init__(self) -> None:
        self.env: dict[str, str] = {}
        self.registered: list[str] = []
        self.deregistered: list[tuple[str, bool]] = []
        self.targets_ok = True
        self.failure: str | None = None
        self.task_secrets: TaskSecrets | None = None

    def environment(self, task: Task) -> dict[str, str]:
        return {"PATH": os.environ["PATH"], "HOST": task.ip, "PORT": str(task.port), **self.env}

    def secrets(self, task: Task) -> dict[str, str]:
        return self.task_secrets.values(task.service) if self.task_secrets else {}

    async def register(self, task: Task) -> None:
        self.registered.append(task.id)

    async def deregister(self, task: Task, *, drain: bool) -> None:
        self.deregistered.append((task.id, drain))

    def health_changed(self, task: Task) -> None:
        pass

    def targets_healthy(self, task: Task) -> bool:
        return self.targets_ok

    def target_failure(self, task: Task) -> str | None:
        return self.failure


@dataclass
class Harness:
    cluster: Cluster
    hooks: FakeHooks
    registry: LocalRegistry
    context: Path
    changes: asyncio.Event = field(default_factory=asyncio.Event)
    observers: list[Callable[[], None]] = field(default_factory=list)

    @property
    def scheduler(self) -> ServiceScheduler:
        return self.cluster.services["app"]

    def changed(self) -> None:
        for observe in self.observers:
            observe()
        self.changes.set()

    async def until(self, predicate: Callable[[], Any], timeout: float = 10.0) -> None:
        """Wait until ``predicate()`` holds, looking again at every change of the cluster
        (and every 50 ms for what changes silently, like a process that exits)."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changes.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changes.wait(), 0.05)

    def push(self, mode: str) -> ImageManifest:
        """Push the app image again with ``mode`` as its default behaviour."""
        (self.context / "mode.txt").write_text(mode)
        image = self.cluster.spec.images["app"]
        return self.registry.push("app", image)


HarnessFactory = Callable[..., Awaitable[Harness]]


def spec_text(octet: int, port: int, service: str) -> str:
    # The VPC keeps its last three octets on loopback (10.x.10.4 is 127.x.10.4): a
    # random second octet and port keep these tasks clear of a twin on this machine.
    return f"""
name: t
network:
  cidr: 10.{octet}.0.0/16
  subnets: {{public: [10.{octet}.0.0/24, 10.{octet}.1.0/24],
             private: [10.{octet}.10.0/24, 10.{octet}.11.0/24]}}
images: {{app: {{context: app, dockerfile: Dockerfile}}}}
cluster: {{name: test}}
services:
  app: {{image: app, port: {port}, {service}}}
"""


@pytest.fixture(name="make_harness")
async def make_harness_fixture(tmp_path: Path) -> AsyncIterator[HarnessFactory]:
    """``await make_harness(service="desired_count: 2", mode="serve", command=...)``."""
    made: list[Harness] = []
    endpoints: list[RegistryServer] = []

    async def make(
        service: str = "desired_count: 1",
        *,
        mode: str = "serve",
        command: str = '["python", "app.py"]',
        start_timeout: float = 10.0,
        time_scale: float = TIME_SCALE,
    ) -> Harness:
        context = tmp_path / "app"
        context.mkdir()
        (context / "app.py").write_text(APP)
        (context / "Dockerfile").write_text(
            f"FROM python:3.12-slim\nWORKDIR /app\nCOPY . .\nCMD {command}\n"
        )
        spec = parse_spec(spec_text(random.randint(64, 250), random.randint(20000, 60000), service))
        state.prepare(tmp_path / "state")
        registry = LocalRegistry(tmp_path / "state" / "registry", tmp_path)
        endpoint = RegistryServer(registry.store)  # tasks pull over HTTP, as in the twin
        await endpoint.start()
        endpoints.append(endpoint)
        network = LoopbackNetwork(spec)
        hooks = FakeHooks()
        harness: Harness
        cluster = Cluster(
            spec,
            network=network,
            registry=registry,
            images=RegistryPuller(
                registry_url=lambda eni: endpoint.url,
                images=tmp_path / "state" / "images",
                connect=network.connect_from,
            ),
            hooks=hooks,
            state_dir=tmp_path / "state",
            clock=TwinClock(time_scale),
            start_timeout=start_timeout,
            on_change=lambda: harness.changed(),
        )
        harness = Harness(cluster, hooks, registry, context)
        harness.push(mode)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        await harness.cluster.stop()
    for endpoint in endpoints:
        await endpoint.stop()


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def child_pid(task: Task) -> int:
    found = re.search(r"child (\d+)", task.log_path.read_text())
    assert found, task.log_path.read_text()
    return int(found.group(1))


async def test_keeps_its_desired_count_and_replaces_an_exited_task_with_a_new_id(
    make_harness: HarnessFactory,
) -> None:
    h = await make_harness("desired_count: 2")
    await h.cluster.start()
    await h.until(lambda: len(h.scheduler.in_service()) == 2)
    victim = h.scheduler.tasks[0]
    assert victim.pid is not None
    os.kill(victim.pid, signal.SIGKILL)

    await h.until(lambda: victim.stopped.is_set() and len(h.scheduler.in_service()) == 2)
    assert victim not in h.scheduler.tasks
    assert victim.stopped_reason == "Essential container in task exited (exit code -9)"
    assert (victim.id, False) in h.hooks.deregistered  # a dead task is not drained
    assert h.scheduler.restarts == 1 and h.scheduler.failed_starts == 0
    assert len({t.id for t in h.scheduler.tasks} | {victim.id}) == 3


@pytest.mark.slow  # three back-offs: 0.25 s, 0.5 s, 1 s
async def test_a_crash_loop_backs_off_longer_each_time_and_reports_code_and_log(
    make_harness: HarnessFactory,
) -> None:
    h = await make_harness(mode="crash", time_scale=0.1)  # back-off 0.25 s, 0.5 s, 1 s
    await h.cluster.start()
    await h.until(lambda: h.scheduler.failed_starts >= 4 and len(h.cluster.stopped_tasks) >= 4)

    failure = h.scheduler.describe().failure
    assert failure is not None and "exited with code 3 at start" in failure
    assert "database password missing" in failure
    starts = sorted(t.created_at.timestamp() for t in h.cluster.stopped_tasks)[:4]
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert gaps[0] >= 0.25 and gaps[1] >= 0.5 and gaps[2] >= 1.0, gaps
    assert gaps[0] < gaps[1] < gaps[2], gaps


async def test_a_service_whose_tasks_crash_at_start_reads_as_failing_with_the_reason(
    make_harness: HarnessFactory,
) -> None:
    h = await make_harness("desired_count: 2", mode="crash")
    await h.cluster.start()
    await h.until(lambda: h.scheduler.failed_starts >= CRASH_LOOP_LIMIT)

    described = h.scheduler.describe()

    crashed = "Essential container in task exited (exit code 3)"
    assert described.state is ServiceState.FAILING
    assert (described.healthy, described.desired) == (0, 2)
    assert described.failed_starts >= CRASH_LOOP_LIMIT
    assert described.last_stop_reason == crashed
    assert described.failure is not None and "database password missing" in described.failure
    _, row, *_ = status_view.render_services([described])
    assert row.split()[:3] == ["app", "0/2", "FAILING"] and row.endswith(crashed)
    readiness = readiness_of([described])
    assert not readiness.ready and readiness.failure is not None
    assert readiness.waiting == [f"app 0/2 healthy (FAILING; last stop: {crashed})"]


async def test_a_service_that_lost_a_task_reads_as_degraded_until_it_is_replaced(
    make_harness: HarnessFactory,
) -> None:
    h = await make_harness("desired_count: 2")
    await h.cluster.start()
    await h.until(lambda: len(h.scheduler.in_service()) == 2)
    assert h.scheduler.describe().state is ServiceState.ACTIVE
    seen: list[ServiceStatus] = []
    h.observers.append(lambda: seen.append(h.scheduler.describe()))
    victim = h.scheduler.tasks[0]
    assert victim.pid is not None

    os.kill(victim.pid, signal.SIGKILL)
    await h.until(lambda: victim.stopped.is_set() and len(h.scheduler.in_service()) == 2)

    killed = "Essential container in task exited (exit code -9)"
    degraded = next(s for s in seen if s.state is ServiceState.DEGRADED)
    assert (degraded.healthy, degraded.desired, degraded.restarts) == (1, 2, 1)
    assert degraded.last_stop_reason == killed
    assert ServiceState.ACTIVE not in {s.state for s in seen[: seen.index(degraded)]}
    recovered = h.scheduler.describe()
    assert recovered.state is ServiceState.ACTIVE and recovered.restarts == 1
    assert recovered.last_stop_reason == killed


async def test_a_launch_that_raises_leaves_no_phantom_task(make_harness: HarnessFactory) -> None:
    h = await make_harness(command='["fargo-no-such-command"]')

    task = await h.scheduler.run_task()

    assert task is not None
    await h.until(task.stopped.is_set)
    assert h.scheduler.tasks == [] and h.scheduler.active() == []
    assert task.last_status is TaskStatus.STOPPED
    assert task.stopped_reason is not None and "CannotStartContainerError" in task.stopped_reason
    assert h.scheduler.failed_starts == 1
    assert h.scheduler.failure is not None and "fargo-no-such-command" in h.scheduler.failure
    network = h.cluster.network
    assert task.ip in {network.place_task().ip, network.place_task().ip}  # released


async def test_an_address_held_by_another_process_is_a_failed_start(
    make_harness: HarnessFactory,
) -> None:
    h = await make_harness()
    port = h.cluster.spec.services["app"].port
    second_octet = h.cluster.spec.network.cidr.network_address.packed[1]
    first = f"127.{second_octet}.10.4"  # where the first task goes
    with socket.create_server((first, port)):
        task = await h.scheduler.run_task()
        assert task is not None and task.ip == first
        await h.until(task.stopped.is_set)
    assert task.pid is None and h.hooks.registered == []
    assert f"{first}:{port} is in use by another process" in (h.scheduler.failure or "")


async def test_a_task_that_cannot_be_pulled_is_a_failed_start(
    make_harness: HarnessFactory,
) -> None:
    h = await make_harness()
    h.registry._latest.clear()  # nothing pushed

    assert await h.scheduler.run_task() is None
    assert h.scheduler.failed_starts == 1 and h.scheduler.tasks == []
    assert h.scheduler.failure is not None and "no image pushed" in h.scheduler.failure
    assert h.scheduler.backoff() == TwinClock(TIME_SCALE).backoff(1) == 2.5 * TIME_SCALE


async def test_a_program_this_machine_lacks_stops_the_task_with_the_reason(
    make_harness: HarnessFactory,
) -> None:
    h = await make_harness(command='["fargo-no-such-node", "server.js"]')

    task = await h.scheduler.run_task()

    assert task is not None
    await h.until(task.stopped.is_set)
    assert task.process is None  # never started
    assert task.stopped_reason is not None
    assert task.stopped_reason.startswith(
        'CannotStartContainerError: exec: "fargo-no-such-node": executable file not found'
    )
    assert h.scheduler.failure is not None and "fargo-no-such-node" in h.scheduler.failure


async def test_a_task_that_never_listens_is_a_failed_start(make_harness: HarnessFactory) -> None:
    h = await make_harness(mode="silent", start_timeout=0.3)

    task = await h.scheduler.run_task()

    assert task is not None
    await h.until(task.stopped.is_set)
    assert h.scheduler.failed_starts == 1
    assert h.scheduler.failure is not None
    assert f"did not listen on {task.ip}:{task.port}" in h.scheduler.failure
    assert "starting in mode silent" in h.scheduler.failure  # the log tail
    assert task.pid is not None and gone(task.pid)
    assert h.hooks.registered == []


@pytest.mark.slow  # waits out a 2 s stop timeout
async def test_stop_sends_sigterm_then_sigkill_after_the_stop_timeout_to_the_group(
    make_harness: HarnessFactory,
) -> None:
    h = await make_harness("stop_timeout: 2", mode="stubborn")
    task = await h.scheduler.run_task()
    assert task is not None and task.last_status is TaskStatus.RUNNING
    worker = child_pid(task)

    began = time.monotonic()
    await h.scheduler.stop_task(task, "test", drain=False)

    # The point of the test: SIGKILL only once the stop timeout (2 s, not scaled) ran out
    assert 2.0 <= time.monotonic() - began < 5.0
    assert task.exit_code == -signal.SIGKILL
    assert task.pid is not None and gone(task.pid)
    await h.until(lambda: gone(worker), timeout=2)  # SIGKILLed with the group, reaped by init
    summary = TaskSummary.of(task)
    assert summary.last_status is TaskStatus.STOPPED and summary.stopped_reason == "test"


async def test_a_lead_process_that_exits_takes_its_process_group_with_it(
    make_harness: HarnessFactory,
) -> None:
    h = await make_harness(mode="orphan")

    task = await h.scheduler.run_task()

    assert task is not None
    await h.until(task.stopped.is_set)
    worker = child_pid(task)
    await h.until(lambda: gone(worker), timeout=2)
    assert "exited with code 1 at start" in (h.scheduler.failure or "")
    assert not list((h.cluster.state_dir / "pids").glob("*.json"))


async def test_a_task_stopped_while_starting_is_never_registered(
    make_harness: HarnessFactory,
) -> None:
    h = await make_harness(mode="silent")
    starting = asyncio.create_task(h.scheduler.run_task())
    await h.until(lambda: bool(h.scheduler.tasks) and h.scheduler.tasks[0].pid is not None)
    task = h.scheduler.tasks[0]

    await h.scheduler.stop_task(task, "Scaling activity initiated by deployment")

    assert await asyncio.wait_for(starting, 2) is task
    assert h.hooks.registered == [] and h.scheduler.failed_starts == 0
    assert task.pid is not None and gone(task.pid)


async def test_failing_container_health_checks_before_ready_is_a_failed_start(
    make_harness: HarnessFactory,
) -> None:
    h = await make_harness("health_check: {path: /missing, retries: 1, start_period: 0}")

    task = await h.scheduler.run_task()

    assert task is not None
    await h.until(task.stopped.is_set)
    assert task.health is HealthStatus.UNHEALTHY
    assert h.scheduler.failed_starts == 1 and h.scheduler.restarts == 0
    assert "failed container health checks" in (h.scheduler.failure or "").lower()


async def test_a_command_health_check_runs_in_the_task_with_its_environment_and_folder(
    make_harness: HarnessFactory,
) -> None:
    # As `docker exec`: the task's environment (CHECK, from the task definition) and its
    # WORKDIR (where the image's mode.txt is).
    check = '[CMD-SHELL, "test \\"$CHECK\\" = ok && test -f mode.txt"]'
    h = await make_harness(f"health_check: {{command: {check}, retries: 1, start_period: 0}}")
    h.hooks.env["CHECK"] = "ok"

    task = await h.scheduler.run_task()

    assert task is not None
    await h.until(lambda: task.health is HealthStatus.HEALTHY)
    assert h.scheduler.failed_starts == 0


@pytest.mark.parametrize(
    "command",
    [
        "[CMD, python, -c, 'raise SystemExit(1)']",  # exits 1
        "[CMD, fargo-no-such-program]",  # a program the task does not have
        '[CMD-SHELL, "test \\"$CHECK\\" = ok"]',  # another environment than the task's
    ],
    ids=["exit 1", "no such program", "not the task's environment"],
)
async def test_a_failing_command_health_check_is_a_failed_start(
    make_harness: HarnessFactory, command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = await make_harness(f"health_check: {{command: {command}, retries: 1, start_period: 0}}")
    h.hooks.env["CHECK"] = "not ok"
    monkeypatch.setenv("CHECK", "ok")  # the control plane's environment is not the task's

    task = await h.scheduler.run_task()

    assert task is not None
    await h.until(task.stopped.is_set)
    assert task.health is HealthStatus.UNHEALTHY
    assert "failed container health checks" in (h.scheduler.failure or "").lower()
    # why, in the service's events: the exit status and output, or the missing program
    said = [e for e in h.scheduler.events if "failed its container health check" in e]
    assert said and ("exit status" in said[-1] or "fargo-no-such-program" in said[-1]), said


async def test_in_loopback_mode_a_check_of_127_0_0_1_reaches_the_tasks_own_address(
    make_harness: HarnessFactory,
) -> None:
    # On ECS, 127.0.0.1 in a check is the task's own namespace; a loopback-mode task has
    # none, and listens on an address of its own.
    probe = "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/' % os.environ['PORT'])"
    h = await make_harness(
        f'health_check: {{command: [CMD, python, -c, "{probe}"], retries: 1, start_period: 0}}'
    )

    task = await h.scheduler.run_task()

    assert task is not None and not task.ip.startswith("127.0.0.1")
    await h.until(lambda: task.health is HealthStatus.HEALTHY)


async def test_a_command_health_check_past_its_timeout_is_killed_and_fails(
    make_harness: HarnessFactory, tmp_path: Path
) -> None:
    marker = tmp_path / "check-pids"
    command = f'[CMD-SHELL, "echo $$ >> {marker}; sleep 60 & echo $! >> {marker}; wait"]'
    h = await make_harness(f"health_check: {{command: {command}, retries: 1, start_period: 0}}")

    task = await h.scheduler.run_task()

    assert task is not None
    await h.until(task.stopped.is_set, timeout=MIN_TIMEOUT_SECONDS + 10)
    assert task.health is HealthStatus.UNHEALTHY
    pids = [int(line) for line in marker.read_text().split()]
    assert len(pids) == 2 and all(gone(pid) for pid in pids)  # the shell and its sleep


async def test_load_balancer_unhealthy_reports_wait_for_the_grace_period(
    make_harness: HarnessFactory,
) -> None:
    h = await make_harness()
    h.hooks.targets_ok = False
    h.hooks.failure = "(target-group tg) Target.ResponseCodeMismatch: codes [404]"
    task = await h.scheduler.run_task()
    assert task is not None and task.started_at is not None

    h.cluster.target_unhealthy("tg", task.id)
    assert task.desired_status is TaskStatus.RUNNING  # within the grace period (0.6 s)

    await h.until(task.stopped.is_set)
    waited = (task.stopped_at - task.started_at).total_seconds() if task.stopped_at else 0
    assert waited >= 60 * TIME_SCALE
    assert h.scheduler.failed_starts == 1
    assert "Target.ResponseCodeMismatch" in (h.scheduler.failure or "")


async def test_stopping_the_cluster_stops_every_task_and_process(
    make_harness: HarnessFactory,
) -> None:
    h = await make_harness("desired_count: 2")
    await h.cluster.start()
    await h.until(lambda: len(h.scheduler.in_service()) == 2)
    tasks = list(h.scheduler.tasks)

    await h.cluster.stop()

    assert h.scheduler.tasks == []
    assert all(t.pid is not None and gone(t.pid) for t in tasks)
    assert not list((h.cluster.state_dir / "pids").glob("*.json"))


def test_container_health_timeouts_are_floored_and_intervals_scaled() -> None:
    check = ContainerHealthCheck(interval=30, timeout=5, start_period=10)
    fast = CheckTiming.of(check, TwinClock(0.1))
    assert (fast.interval, fast.timeout, fast.start_period) == (3.0, MIN_TIMEOUT_SECONDS, 1.0)
    real = CheckTiming.of(check, TwinClock.aws())
    assert (real.interval, real.timeout, real.start_period) == (30.0, 5.0, 10.0)
