"""ECS's local counterpart: services that keep their desired count of tasks.

A `Cluster` runs one `ServiceScheduler` per spec service. The scheduler starts
tasks as supervised process groups and replaces tasks that exit or fail their
health checks (with a new task id, after deregistering the old one). A task that
fails before it is in service — its process exits, it never listens, it fails its
health checks, it cannot be launched — is a failed start: the service backs off
and, after `CRASH_LOOP_LIMIT` in a row, reports the reason. Tasks stop as on ECS:
deregister and drain, SIGTERM, stop timeout, SIGKILL. Rolling deployments are
`fargo.local.ecs.deployment`'s; the scheduler stands aside while one runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import aiohttp

from fargo.local.ec2.network import NetworkMode
from fargo.local.ecr.registry import ImageManifest, LocalRegistry
from fargo.local.ecs.supervisor import TaskHooks, TaskSupervisor
from fargo.local.ecs.task import Task, TaskStatus, now
from fargo.local.state import folder as state
from fargo.local.state.files import log_tail
from fargo.spec import Service, Spec
from fargo.spec.defaults import HEALTH_CHECK_GRACE_SECONDS

__all__ = ["Cluster", "ServiceScheduler", "TaskHooks"]

START_TIMEOUT_SECONDS = 30.0  # for a task's port to accept connections
CRASH_LOOP_LIMIT = 3  # failed starts in a row before a service reports itself failing
BACKOFF_CAP_SECONDS = 30.0


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
        self.deploying = False  # a deployment drives the tasks; reconciling waits
        self.deployment_lock = asyncio.Lock()
        self.stopping = False
        self.supervisor = TaskSupervisor(cluster, name, service, self)
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None

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
        """Stop reconciling, cancel what runs for the tasks, then stop every task."""
        self.stopping = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        await self.supervisor.close()
        await asyncio.gather(
            *(self.stop_task(t, "Service stopped", drain=False) for t in list(self.tasks)),
            return_exceptions=True,
        )

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
        if self.desired_count > len(self.active()) and not self.deploying:
            await asyncio.sleep(self.backoff())
        if self.deploying or self.stopping:
            return
        active = self.active()
        missing = self.desired_count - len(active)
        for _ in range(missing):
            task = self._new_task()
            if task is None:
                break  # a failed start: the next round comes after the back-off
            self.supervisor.spawn(self.supervisor.start(task), f"start {task.id}")
        if missing < 0:
            surplus = sorted(active, key=lambda t: (t.ready.is_set(), t.created_at))[:-missing]
            for task in surplus:
                self.supervisor.begin_stop(task, "Scaling activity initiated by deployment")

    def backoff(self) -> float:
        """Seconds to wait before the next start: doubling with each failed start, capped."""
        if self.failed_starts == 0:
            return 0.0
        return float(min(BACKOFF_CAP_SECONDS, 0.25 * 2 ** (self.failed_starts - 1)))

    async def run_task(self, image: ImageManifest | None = None) -> Task | None:
        """Start one task and return it once it listens and is registered (or has stopped);
        None if it could not even be placed (a failed start, reported)."""
        task = self._new_task(image)
        if task is not None:
            await self.supervisor.start(task)
        return task

    def _new_task(self, image: ImageManifest | None = None) -> Task | None:
        """Pull and place a task and add it to the service; None (a failed start) if that fails."""
        if self.stopping:
            return None
        cluster = self.cluster
        try:
            if image is None:
                if self.image is None:
                    self.image = cluster.registry.pull(self.service.image)
                image = self.image
            task = self.supervisor.place(image, family=self.family, revision=self.revision)
        except Exception as err:
            self.start_failed(None, f"a task could not be placed: {err}")
            return None
        self.tasks.append(task)
        cluster.changed()
        return task

    def task_ready(self, task: Task) -> None:
        self.failed_starts = 0
        self.failure = None
        self.cluster.changed()

    def task_stopped(self, task: Task) -> None:
        if task in self.tasks:
            self.tasks.remove(task)

    def target_unhealthy(self, task: Task, reason: str) -> None:
        """The load balancer calls ``task`` unhealthy. Within ECS's health check grace period
        (on the twin's clock, from the task's start) it is looked at again when the period
        ends; after it, the task is replaced."""
        grace = HEALTH_CHECK_GRACE_SECONDS * self.cluster.time_scale
        started = task.started_at or now()
        remaining = grace - (now() - started).total_seconds()
        if remaining <= 0:
            self.replace(task, reason)
            return

        async def look_again() -> None:
            await asyncio.sleep(remaining)
            failure = self.cluster.hooks.target_failure(task)
            if failure is not None:
                self.replace(task, f"Task failed ELB health checks in {failure}")

        self.supervisor.spawn(look_again(), f"grace period {task.id}")

    def replace(self, task: Task, reason: str) -> None:
        """Stop ``task`` and let the scheduler start a new one in its place."""
        if task.desired_status is not TaskStatus.RUNNING:
            return
        if task.ready.is_set():
            self.restarts += 1
            self.event(f"task {task.id} is unhealthy: {reason}; replacing it")
        else:
            self.start_failed(task, f"task {task.id} failed before it was in service: {reason}")
        self.supervisor.begin_stop(task, reason, drain=task.ready.is_set())
        self.wake()

    def start_failed(self, task: Task | None, summary: str) -> None:
        """A task failed before it was in service: count it, keep the reason, back off."""
        self.failed_starts += 1
        tail = "\n".join(log_tail(task.log_path)) if task is not None else ""
        self.failure = f"{summary}:\n{tail}" if tail else summary
        self.event(summary)
        if self.failed_starts >= CRASH_LOOP_LIMIT:
            self.event(f"tasks keep failing at start ({self.failed_starts} in a row)")
        self.cluster.changed()
        self.wake()

    def exited(self, task: Task, code: int) -> None:
        """The task's essential container exited while the task was wanted."""
        reason = f"Essential container in task exited (exit code {code})"
        if task.ready.is_set():
            self.restarts += 1
            self.event(f"task {task.id} stopped: {reason}")
        else:
            self.start_failed(task, f"task {task.id} exited with code {code} at start")
        self.supervisor.begin_stop(task, reason, drain=False)
        self.wake()

    async def stop_task(self, task: Task, reason: str, *, drain: bool = True) -> None:
        """Deregister (and drain), then SIGTERM, stop timeout, SIGKILL; returns once stopped."""
        await self.supervisor.stop(task, reason, drain=drain)

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
        start_timeout: float = START_TIMEOUT_SECONDS,
        on_change: Callable[[], None] = lambda: None,
        log: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.spec = spec
        self.network = network
        self.registry = registry
        self.hooks = hooks
        self.time_scale = time_scale
        self.start_timeout = start_timeout
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
        """The container health checks' client (a fresh connection per check)."""
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

    def target_unhealthy(self, target_group: str, task_id: str) -> None:
        """A load balancer's health checks turned against one of the tasks."""
        task = self.find_task(task_id)
        if task is not None:
            why = self.hooks.target_failure(task) or f"(target-group {target_group})"
            self.services[task.service].target_unhealthy(
                task, f"Task failed ELB health checks in {why}"
            )

    def record_pid(self, task: Task) -> None:
        if task.pid is not None:
            what = f"task {task.id} of service {task.service}"
            state.record_process(self.state_dir, f"task-{task.id}", task.pid, what)

    def forget_pid(self, task: Task) -> None:
        state.forget_process(self.state_dir, f"task-{task.id}")
