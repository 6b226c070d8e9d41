"""RunTask: tasks of a service's task definition that no scheduler keeps.

    tasks = await cluster.standalone.run("web-b", count=1, started_by="nightly-job")
    await cluster.standalone.stop_task(tasks[0], "Task stopped by user")

A standalone task runs as the service's tasks do — its own ENI, image, secrets,
environment, container health checks, log stream, metadata endpoint — but, as on ECS, it
is in no target group and no Cloud Map service (ECS registers a service's tasks only),
nothing replaces it, and when its essential container exits it stops with ECS's reason.
"""

from __future__ import annotations

import logging
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp

from fargo.local.clock import TwinClock
from fargo.local.ec2.network import NetworkMode
from fargo.local.ecs.supervisor import ImagePuller, TaskHooks, TaskLogs, TaskSupervisor
from fargo.local.ecs.task import Task
from fargo.local.events import about
from fargo.spec import Spec

if TYPE_CHECKING:
    from fargo.local.ecs.cluster import Cluster

logger = logging.getLogger(__name__)

MAX_COUNT = 10  # RunTask's limit per call


class _Unregistered:
    """The runtime's task hooks without the registrations: environment and secrets only."""

    def __init__(self, hooks: TaskHooks) -> None:
        self._hooks = hooks

    def environment(self, task: Task) -> dict[str, str]:
        return self._hooks.environment(task)

    def secrets(self, task: Task) -> dict[str, str]:
        return self._hooks.secrets(task)

    async def register(self, task: Task) -> None:
        return None

    async def deregister(self, task: Task, *, drain: bool) -> None:
        return None

    def health_changed(self, task: Task) -> None:
        return None

    def targets_healthy(self, task: Task) -> bool:
        return True  # in no target group: in service once its container is healthy

    def target_failure(self, task: Task) -> str | None:
        return None


class _Context:
    """What a supervisor uses of the cluster, with hooks that register nothing."""

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster
        self.spec: Spec = cluster.spec
        self.hooks: TaskHooks = _Unregistered(cluster.hooks)
        self.logs: TaskLogs = cluster.logs
        self.network: NetworkMode = cluster.network
        self.images: ImagePuller = cluster.images
        self.log_dir: Path = cluster.log_dir
        self.clock: TwinClock = cluster.clock
        self.start_timeout: float = cluster.start_timeout
        self.stopped_tasks: deque[Task] = cluster.stopped_tasks

    @property
    def http(self) -> aiohttp.ClientSession:
        return self._cluster.http

    def changed(self) -> None:
        self._cluster.changed()

    def record_pid(self, task: Task) -> None:
        self._cluster.record_pid(task)

    def forget_pid(self, task: Task) -> None:
        self._cluster.forget_pid(task)


class _Policy:
    """What happens to a standalone task: nothing replaces it; an exit stops it."""

    def __init__(self, owner: StandaloneTasks, service: str) -> None:
        self.owner = owner
        self.service = service

    def event(self, message: str) -> None:
        logger.info("standalone %s", message, extra=about("service", self.service))

    def start_failed(self, task: Task, summary: str) -> None:
        self.event(summary)

    def exited(self, task: Task, code: int) -> None:
        reason = f"Essential container in task exited (exit code {code})"
        self.owner.supervisor_of(task).begin_stop(task, reason, drain=False)

    def replace(self, task: Task, reason: str) -> None:
        self.owner.supervisor_of(task).begin_stop(task, reason, drain=False)

    def task_ready(self, task: Task) -> None:
        self.owner.cluster.changed()

    def task_stopped(self, task: Task) -> None:
        self.owner.forget(task)


class StandaloneTasks:
    """The cluster's standalone tasks (RunTask)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.tasks: list[Task] = []
        self._supervisors: dict[str, TaskSupervisor] = {}

    async def run(
        self, service: str, *, count: int = 1, started_by: str | None = None
    ) -> list[Task]:
        """Start ``count`` tasks of ``service``'s current task definition and return them
        once each listens (or has stopped: its ``stoppedReason`` says why)."""
        scheduler = self.cluster.services[service]
        if not 1 <= count <= MAX_COUNT:
            raise ValueError(f"count is 1 to {MAX_COUNT}; found {count}")
        image = scheduler.image or self.cluster.registry.pull(scheduler.service.image)
        supervisor = TaskSupervisor(
            _Context(self.cluster), service, scheduler.service, _Policy(self, service)
        )
        started = []
        for _ in range(count):
            task = supervisor.place(image, family=scheduler.family, revision=scheduler.revision)
            task.group = f"family:{scheduler.family}"
            task.started_by = started_by
            self.tasks.append(task)
            self._supervisors[task.id] = supervisor
            started.append(task)
        self.cluster.changed()
        for task in started:
            supervisor.spawn(supervisor.start(task), f"start {task.id}")
        return started

    def supervisor_of(self, task: Task) -> TaskSupervisor:
        return self._supervisors[task.id]

    def stop_task(self, task: Task, reason: str) -> None:
        """``StopTask``: SIGTERM, stop timeout, SIGKILL (nothing to drain)."""
        self.supervisor_of(task).begin_stop(task, reason, drain=False)

    def forget(self, task: Task) -> None:
        if task in self.tasks:
            self.tasks.remove(task)
        self._supervisors.pop(task.id, None)

    async def stop(self) -> None:
        """Stop every standalone task (the twin stops)."""
        supervisors = {id(s): s for s in self._supervisors.values()}.values()
        for task in list(self.tasks):
            await self.supervisor_of(task).stop(task, "Task stopped by the twin", drain=False)
        for supervisor in supervisors:
            await supervisor.close()
