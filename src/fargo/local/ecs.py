"""ECS's local counterpart: services that keep their desired count of tasks.

A `Cluster` runs one `ServiceScheduler` per spec service. The scheduler starts
tasks as supervised process groups, replaces tasks that exit or fail their
health checks (with a new task id, after deregistering the old one), backs off
when tasks crash at start, rolls deployments within minimum healthy / maximum
percent, and stops tasks as ECS does: deregister and drain, SIGTERM, stop
timeout, SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from fargo.local import state
from fargo.local.network import NetworkMode
from fargo.local.registry import ImageManifest, LocalRegistry
from fargo.local.task import HealthStatus, Task, TaskStatus, new_task_id, now
from fargo.spec import Service, Spec

START_TIMEOUT_SECONDS = 30.0
CRASH_LOOP_LIMIT = 3  # consecutive failed starts before a service reports itself failing
BACKOFF_CAP_SECONDS = 30.0
LOG_TAIL_LINES = 12


class TaskHooks(Protocol):
    """What the runtime does around a task's life (load balancers, discovery)."""

    def environment(self, task: Task) -> dict[str, str]: ...

    async def registered(self, task: Task) -> None: ...

    async def deregister(self, task: Task, *, drain: bool) -> None: ...

    def health_changed(self, task: Task) -> None: ...

    def in_service(self, task: Task) -> bool: ...


class ServiceScheduler:
    """Keeps one ECS service at its desired count."""

    def __init__(self, cluster: Cluster, name: str, service: Service) -> None:
        self.cluster = cluster
        self.name = name
        self.service = service
        self.desired_count = service.desired_count
        self.revision = 1
        self.image: ImageManifest | None = None  # what the current revision runs
        self.tasks: list[Task] = []
        self.events: deque[str] = deque(maxlen=50)
        self.restarts = 0
        self.failed_starts = 0
        self.failure: str | None = None
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._children: set[asyncio.Task[Any]] = set()
        self._deploying = False

    @property
    def family(self) -> str:
        return f"{self.cluster.spec.name}-{self.name}"

    def active(self) -> list[Task]:
        return [t for t in self.tasks if t.desired_status is TaskStatus.RUNNING]

    def in_service(self) -> list[Task]:
        return [t for t in self.active() if t.ready.is_set()]

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._reconcile_forever(), name=f"ecs:{self.name}")

    async def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        await asyncio.gather(
            *(self.stop_task(t, "Service stopped", drain=False) for t in list(self.tasks)),
            return_exceptions=True,
        )
        for child in list(self._children):
            child.cancel()

    def event(self, message: str) -> None:
        stamp = now().strftime("%H:%M:%S")
        self.events.append(f"{stamp} (service {self.name}) {message}")
        self.cluster.log(f"service {self.name}: {message}")

    def wake(self) -> None:
        self._wake.set()

    async def _reconcile_forever(self) -> None:
        while True:
            await self._reconcile()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=1.0)

    async def _reconcile(self) -> None:
        if self._deploying:
            return
        active = self.active()
        missing = self.desired_count - len(active)
        if missing > 0:
            delay = self._backoff()
            if delay:
                await asyncio.sleep(delay)
            for _ in range(missing):
                self._spawn(self.run_task())
        elif missing < 0:
            surplus = sorted(active, key=lambda t: (t.ready.is_set(), t.created_at))[:-missing]
            for task in surplus:
                self._spawn(self.stop_task(task, "Scaling activity initiated by deployment"))

    def _backoff(self) -> float:
        if self.failed_starts == 0:
            return 0.0
        return float(min(BACKOFF_CAP_SECONDS, 0.25 * 2 ** (self.failed_starts - 1)))

    def _spawn(self, coroutine: Any) -> None:
        child = asyncio.create_task(coroutine)
        self._children.add(child)
        child.add_done_callback(self._children.discard)

    async def run_task(self, image: ImageManifest | None = None) -> Task:
        """Start one task: place, pull, launch, wait for its port, register it."""
        cluster = self.cluster
        svc = self.service
        if image is None:
            if self.image is None:
                self.image = cluster.registry.pull(svc.image)
            image = self.image
        task = Task(
            id=new_task_id(),
            service=self.name,
            cluster=cluster.spec.cluster.name,
            region=cluster.spec.region,
            family=self.family,
            revision=self.revision,
            placement=cluster.network.place_task(),
            port=cluster.network.container_port(svc.port),
            cpu=svc.cpu,
            memory=svc.memory,
            image=image,
            log_path=cluster.log_dir / self.name / "pending.log",
        )
        task.log_path = cluster.log_dir / self.name / f"{task.id}.log"
        task.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.tasks.append(task)
        task.last_status = TaskStatus.PENDING
        argv = [sys.executable if arg in {"python", "python3"} else arg for arg in image.command]
        with task.log_path.open("ab") as log:
            task.process = await cluster.network.launch(
                argv, env=cluster.hooks.environment(task), cwd=image.root, log=log
            )
        cluster.record_pid(task)
        self._spawn(self._watch_exit(task))
        if not await self._wait_listening(task):
            if task.desired_status is TaskStatus.RUNNING:
                await self.stop_task(task, "Task failed to start listening", drain=False)
            return task
        task.last_status = TaskStatus.RUNNING
        task.started_at = now()
        self.event(f"started task {task.id} at {task.ip}:{task.port}")
        await cluster.hooks.registered(task)
        self._spawn(self._health_checks(task))
        self._spawn(self._await_ready(task))
        return task

    async def _wait_listening(self, task: Task) -> bool:
        deadline = asyncio.get_running_loop().time() + START_TIMEOUT_SECONDS
        while asyncio.get_running_loop().time() < deadline:
            if task.process is None or task.process.returncode is not None:
                return False
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection(task.ip, task.port)
                writer.close()
                return True
            await asyncio.sleep(0.02)
        return False

    async def _await_ready(self, task: Task) -> None:
        """A task is in service once its container and every target group call it healthy."""
        while task.desired_status is TaskStatus.RUNNING:
            if task.health is HealthStatus.HEALTHY and self.cluster.hooks.in_service(task):
                task.ready.set()
                self.failed_starts = 0
                self.failure = None
                self.cluster.changed()
                return
            await asyncio.sleep(0.02)

    async def _health_checks(self, task: Task) -> None:
        """The container health check (HTTP GET on the container port), on the twin's clock."""
        check = self.service.health_check
        scale = self.cluster.time_scale
        url = f"http://{task.ip}:{task.port}{check.path}"
        timeout = aiohttp.ClientTimeout(total=check.timeout * scale)
        failures = 0
        started = asyncio.get_running_loop().time()
        while task.desired_status is TaskStatus.RUNNING:
            healthy = False
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with self.cluster.http.get(url, timeout=timeout) as response:
                    healthy = response.status < 400
            grace = asyncio.get_running_loop().time() - started < check.start_period * scale
            failures = 0 if healthy else failures + (0 if grace else 1)
            status = task.health
            if healthy:
                status = HealthStatus.HEALTHY
            elif failures >= check.retries:
                status = HealthStatus.UNHEALTHY
            if status is not task.health and task.desired_status is TaskStatus.RUNNING:
                task.health = status
                self.cluster.hooks.health_changed(task)
                if status is HealthStatus.UNHEALTHY:
                    self.replace(task, "Task failed container health checks")
                    return
            await asyncio.sleep(check.interval * scale)

    def replace(self, task: Task, reason: str) -> None:
        """Stop ``task`` and let the scheduler start a new one in its place."""
        if task.desired_status is not TaskStatus.RUNNING:
            return
        self.restarts += 1
        self.event(f"task {task.id} is unhealthy: {reason}; replacing it")
        self._spawn(self.stop_task(task, reason))
        self.wake()

    async def _watch_exit(self, task: Task) -> None:
        assert task.process is not None
        code = await task.process.wait()
        self.cluster.forget_pid(task)
        if task.desired_status is TaskStatus.RUNNING:
            task.exit_code = code
            task.desired_status = TaskStatus.STOPPED
            reason = f"Essential container in task exited (exit code {code})"
            task.stopped_reason = reason
            if not task.ready.is_set():
                self.failed_starts += 1
                tail = "\n".join(log_tail(task.log_path))
                self.failure = f"task {task.id} exited with code {code} at start:\n{tail}"
                if self.failed_starts >= CRASH_LOOP_LIMIT:
                    self.event(f"tasks keep failing at start ({self.failed_starts} in a row)")
            else:
                self.restarts += 1
            self.event(f"task {task.id} stopped: {reason}")
            await self.cluster.hooks.deregister(task, drain=False)
            self._finish(task)
            self.wake()
        else:
            task.exit_code = code

    async def stop_task(self, task: Task, reason: str, *, drain: bool = True) -> None:
        """Deregister (and drain), then SIGTERM, stop timeout, SIGKILL."""
        if task.last_status is TaskStatus.STOPPED or (
            task.desired_status is TaskStatus.STOPPED and task.stopped_reason is not None
        ):
            await task.stopped.wait()
            return
        task.desired_status = TaskStatus.STOPPED
        task.stopped_reason = reason
        task.last_status = TaskStatus.DEACTIVATING
        self.cluster.changed()
        await self.cluster.hooks.deregister(task, drain=drain)
        task.last_status = TaskStatus.STOPPING
        process = task.process
        if process is not None and process.returncode is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout=self.service.stop_timeout)
            except TimeoutError:
                _signal_group(process.pid, signal.SIGKILL)
                await process.wait()
            task.exit_code = process.returncode
        self.event(f"stopped task {task.id}: {reason}")
        self._finish(task)

    def _finish(self, task: Task) -> None:
        task.last_status = TaskStatus.STOPPED
        task.stopped_at = now()
        task.stopped.set()
        self.cluster.network.release(task.ip)
        self.cluster.forget_pid(task)
        self.cluster.stopped_tasks.append(task)
        if task in self.tasks:
            self.tasks.remove(task)
        self.cluster.changed()

    async def deploy(self, image: ImageManifest) -> bool:
        """A rolling deployment of ``image`` as a new revision; see `fargo.local.deployment`."""
        from fargo.local.deployment import rolling_deployment

        self._deploying = True
        try:
            return await rolling_deployment(self, image)
        finally:
            self._deploying = False
            self.wake()

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "desired": self.desired_count,
            "running": len([t for t in self.active() if t.last_status is TaskStatus.RUNNING]),
            "healthy": len(self.in_service()),
            "pending": len([t for t in self.active() if t.last_status is TaskStatus.PENDING]),
            "revision": self.revision,
            "restarts": self.restarts,
            "failure": self.failure if self.failed_starts >= CRASH_LOOP_LIMIT else None,
            "tasks": [t.describe() for t in self.tasks],
            "events": list(self.events)[-10:],
        }


class Cluster:
    """The ECS cluster: every service's scheduler and the state they share."""

    def __init__(
        self,
        spec: Spec,
        *,
        network: NetworkMode,
        registry: LocalRegistry,
        hooks: TaskHooks,
        state_dir: Path,
        time_scale: float,
        on_change: Callable[[], None] = lambda: None,
        log: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.spec = spec
        self.network = network
        self.registry = registry
        self.hooks = hooks
        self.time_scale = time_scale
        self.state_dir = state_dir
        self.log_dir = state_dir / "logs"
        self.log = log
        self._on_change = on_change
        self.services = {
            name: ServiceScheduler(self, name, svc) for name, svc in spec.services.items()
        }
        self.stopped_tasks: deque[Task] = deque(maxlen=100)
        self._http: aiohttp.ClientSession | None = None

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            connector = aiohttp.TCPConnector(force_close=True)
            self._http = aiohttp.ClientSession(connector=connector)
        return self._http

    def changed(self) -> None:
        self._on_change()

    def start(self) -> None:
        state.prepare(self.state_dir)
        for scheduler in self.services.values():
            scheduler.start()

    async def stop(self) -> None:
        await asyncio.gather(*(s.stop() for s in self.services.values()), return_exceptions=True)
        if self._http is not None:
            await self._http.close()
            self._http = None

    def tasks(self) -> Iterable[Task]:
        for scheduler in self.services.values():
            yield from scheduler.tasks

    def find_task(self, task_id: str) -> Task | None:
        for task in [*self.tasks(), *self.stopped_tasks]:
            if task.id == task_id:
                return task
        return None

    def record_pid(self, task: Task) -> None:
        if task.pid is not None:
            what = f"task {task.id} of service {task.service}"
            state.record_process(self.state_dir, f"task-{task.id}", task.pid, what)

    def forget_pid(self, task: Task) -> None:
        state.forget_process(self.state_dir, f"task-{task.id}")


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]
