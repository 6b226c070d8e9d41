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
import logging
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path

import aiohttp

from fargo.local.clock import TwinClock
from fargo.local.ec2.network import NetworkMode
from fargo.local.ecr.registry import ImageManifest, LocalRegistry
from fargo.local.ecs.standalone import StandaloneTasks
from fargo.local.ecs.supervisor import ImagePuller, TaskHooks, TaskLogs, TaskSupervisor
from fargo.local.ecs.task import Task, TaskStatus, now
from fargo.local.events import about
from fargo.local.logs.log_router import DirectLogFiles
from fargo.local.loops import keep_running
from fargo.local.state import folder as state
from fargo.local.state.files import log_tail
from fargo.local.status import ServiceStatus, TaskSummary, service_state
from fargo.spec import Service, Spec
from fargo.spec.defaults import HEALTH_CHECK_GRACE_SECONDS

__all__ = ["Cluster", "ServiceScheduler", "TaskHooks"]

logger = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 30.0  # for a task's port to accept connections
CRASH_LOOP_LIMIT = 3  # failed starts in a row before a service reports itself failing
# ECS counts tasks that are being provisioned or launched as pending.
STARTING_STATUSES = frozenset({TaskStatus.PROVISIONING, TaskStatus.PENDING})


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
        self._loop_task = keep_running(
            f"scheduler of service {self.name}",
            self._reconcile_forever,
            extra=about("service", self.name),
        )

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

    async def delete(self) -> None:
        """``DeleteService`` (forced): scale to 0 — each task deregistered and drained, then
        stopped — and stop reconciling. Returns once every task has stopped."""
        self.desired_count = 0
        self.stopping = True
        self.event("service deleted; draining its tasks")
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        # Wait for a deployment in progress to stand down (it stops at `stopping`).
        async with self.deployment_lock:
            await asyncio.gather(
                *(self.stop_task(t, "Service deleted") for t in list(self.tasks)),
                return_exceptions=True,
            )
        await self.supervisor.close()

    def update_definition(self, service: Service) -> None:
        """The spec's new definition of the service: what new tasks are placed with and
        deployments read (minimum healthy and maximum percent). Tasks running keep theirs."""
        self.service = service
        self.supervisor.service = service

    def event(self, message: str, level: int = logging.INFO) -> None:
        """An ECS service event: kept for ``status`` and logged (``fargo events``)."""
        stamp = now().strftime("%H:%M:%S")
        self.events.append(f"{stamp} (service {self.name}) {message}")
        logger.log(level, "%s", message, extra=about("service", self.name))

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
        return self.cluster.clock.backoff(self.failed_starts)

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
        grace = self.cluster.clock.interval(HEALTH_CHECK_GRACE_SECONDS)
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

    def describe(self) -> ServiceStatus:
        """The service for ``fargo status``: counts, state, and why its tasks stopped."""
        active = self.active()
        healthy = len(self.in_service())
        crash_looping = self.failed_starts >= CRASH_LOOP_LIMIT
        stopped = [  # oldest first; tasks still stopping are the latest
            t
            for t in (*self.cluster.stopped_tasks, *self.tasks)
            if t.service == self.name and t.stopped_reason is not None
        ]
        return ServiceStatus(
            name=self.name,
            state=service_state(
                desired=self.desired_count,
                healthy=healthy,
                restarts=self.restarts,
                failed_starts=self.failed_starts,
                crash_looping=crash_looping,
                deploying=self.deploying,
                stopping=self.stopping,
            ),
            desired=self.desired_count,
            running=len([t for t in active if t.last_status is TaskStatus.RUNNING]),
            pending=len([t for t in active if t.last_status in STARTING_STATUSES]),
            healthy=healthy,
            revision=self.revision,
            restarts=self.restarts,
            failed_starts=self.failed_starts,
            failure=self.failure if crash_looping else None,
            last_stop_reason=stopped[-1].stopped_reason if stopped else None,
            tasks=[TaskSummary.of(t) for t in self.tasks],
            events=list(self.events)[-10:],
        )


class Cluster:
    """The ECS cluster: every service's scheduler and the state they share.

    ``registry`` knows each repository's latest image; ``images`` pulls one for a task
    through its ENI; ``logs`` keeps each task's output (the log router)."""

    name = "ECS cluster"

    def __init__(
        self,
        spec: Spec,
        *,
        network: NetworkMode,
        registry: LocalRegistry,
        hooks: TaskHooks,
        state_dir: Path,
        clock: TwinClock,
        images: ImagePuller,
        logs: TaskLogs | None = None,
        start_timeout: float = START_TIMEOUT_SECONDS,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.spec = spec
        self.logs: TaskLogs = logs or DirectLogFiles()
        self.network = network
        self.registry = registry
        self.images = images
        self.hooks = hooks
        self.clock = clock
        self.start_timeout = start_timeout
        self.state_dir = state_dir
        self.log_dir = state_dir / "logs"
        self._on_change = on_change
        self.services = {
            name: ServiceScheduler(self, name, svc) for name, svc in spec.services.items()
        }
        self.stopped_tasks: deque[Task] = deque(maxlen=100)
        self.standalone = StandaloneTasks(self)  # RunTask's
        self._http: aiohttp.ClientSession | None = None

    @property
    def http(self) -> aiohttp.ClientSession:
        """The container health checks' client (a fresh connection per check)."""
        if self._http is None:
            connector = aiohttp.TCPConnector(
                force_close=True, socket_factory=self.network.socket_factory("task")
            )
            self._http = aiohttp.ClientSession(connector=connector)
        return self._http

    def changed(self) -> None:
        self._on_change()

    def validate(self) -> list[str]:
        return []

    async def start(self) -> None:
        state.prepare(self.state_dir)
        for scheduler in self.services.values():
            scheduler.start()

    async def stop(self) -> None:
        await asyncio.gather(
            self.standalone.stop(),
            *(s.stop() for s in self.services.values()),
            return_exceptions=True,
        )
        if self._http is not None:
            await self._http.close()
            self._http = None

    def create_service(self, name: str, service: Service) -> ServiceScheduler:
        """``CreateService``: a scheduler for ``service``, started (its tasks follow)."""
        if name in self.services:
            raise ValueError(f"service {name!r} already exists")
        scheduler = ServiceScheduler(self, name, service)
        self.services[name] = scheduler
        scheduler.start()
        self.changed()
        return scheduler

    async def delete_service(self, name: str) -> None:
        """``DeleteService``: drain and stop every task, then forget the service."""
        scheduler = self.services[name]
        await scheduler.delete()
        self.services.pop(name, None)
        self.changed()

    def tasks(self) -> Iterable[Task]:
        for scheduler in self.services.values():
            yield from scheduler.tasks

    def find_task(self, task_id: str) -> Task | None:
        for task in [*self.tasks(), *self.standalone.tasks, *self.stopped_tasks]:
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
