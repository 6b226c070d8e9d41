"""One service's tasks as supervised process groups: launch, listen, register, health
checks, readiness, exit and stop — the mechanics; the scheduler decides (`TaskPolicy`).

A task's life: PROVISIONING (its ENI attached, its secrets read, its image pulled
through the ENI) → PENDING (launched in that ENI, waiting for its port) → RUNNING
(registered with its load balancers and Cloud Map; container health checks run) → in
service (``ready``: its container and every target group call it healthy) →
DEACTIVATING (deregistered, draining) → STOPPING (SIGTERM, stop timeout, SIGKILL to the
process group) → STOPPED.
After every await the supervisor looks again whether the task is still wanted, so a
task stopped while it starts never gets registered.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections import deque
from collections.abc import Coroutine
from pathlib import Path
from typing import IO, Any, Protocol

import aiohttp

from fargo.local.clock import TwinClock
from fargo.local.ec2.network import NetworkInterface, NetworkMode
from fargo.local.ecr.registry import ImageManifest
from fargo.local.ecs.container_health import (
    CommandProbe,
    Probe,
    http_probe,
    watch_container_health,
)
from fargo.local.ecs.process import signal_group, terminate, wait_listening
from fargo.local.ecs.task import HealthStatus, Task, TaskStatus, new_task_id, now
from fargo.local.events import about
from fargo.local.images.launch import check_command, task_process_of
from fargo.spec import Service, Spec

READY_POLL_SECONDS = 0.02

logger = logging.getLogger(__name__)


class TaskHooks(Protocol):
    """What the runtime does around a task's life (load balancers, discovery)."""

    def environment(self, task: Task) -> dict[str, str]: ...

    def secrets(self, task: Task) -> dict[str, str]:
        """The values of the task's secrets, read now (raises when one has none)."""
        ...

    async def register(self, task: Task) -> None: ...

    async def deregister(self, task: Task, *, drain: bool) -> None: ...

    def health_changed(self, task: Task) -> None: ...

    def targets_healthy(self, task: Task) -> bool: ...

    def target_failure(self, task: Task) -> str | None: ...


class ImagePuller(Protocol):
    """How a task gets its image while PROVISIONING, through its own ENI."""

    async def pull_image(self, image: ImageManifest, eni: NetworkInterface) -> ImageManifest: ...


class TaskLogs(Protocol):
    def attach(self, stream: Path) -> IO[bytes]:
        """Where a task's output goes: its lines kept in its log file ``stream``."""
        ...


class ClusterContext(Protocol):
    """What the supervisor uses of its cluster (`fargo.local.ecs.cluster.Cluster`)."""

    spec: Spec
    hooks: TaskHooks
    logs: TaskLogs
    network: NetworkMode
    images: ImagePuller
    log_dir: Path
    clock: TwinClock
    start_timeout: float
    stopped_tasks: deque[Task]

    @property
    def http(self) -> aiohttp.ClientSession: ...

    def changed(self) -> None: ...

    def record_pid(self, task: Task) -> None: ...

    def forget_pid(self, task: Task) -> None: ...


class TaskPolicy(Protocol):
    """What the scheduler decides when something happens to one of its tasks."""

    def event(self, message: str) -> None: ...

    def start_failed(self, task: Task, summary: str) -> None: ...

    def exited(self, task: Task, code: int) -> None: ...

    def replace(self, task: Task, reason: str) -> None: ...

    def task_ready(self, task: Task) -> None: ...

    def task_stopped(self, task: Task) -> None: ...


class TaskSupervisor:
    """Runs the tasks of one service; every coroutine it starts for them it can cancel."""

    def __init__(
        self, cluster: ClusterContext, name: str, service: Service, policy: TaskPolicy
    ) -> None:
        self.cluster = cluster
        self.name = name
        self.service = service
        self.policy = policy
        self._about = about("service", name)
        self._children: set[asyncio.Task[Any]] = set()
        self._stops: dict[Task, asyncio.Task[None]] = {}

    def spawn(self, coroutine: Coroutine[Any, Any, Any], name: str) -> None:
        """Run ``coroutine`` for a task; `close` cancels it, an exception is logged."""
        child = asyncio.create_task(coroutine, name=name)
        self._children.add(child)
        child.add_done_callback(self._done)

    def _done(self, child: asyncio.Task[Any]) -> None:
        self._children.discard(child)
        if not child.cancelled() and child.exception() is not None:
            logger.error("%s failed: %r", child.get_name(), child.exception(), extra=self._about)

    async def close(self) -> None:
        """Cancel and await what runs for the tasks (stops in progress finish first)."""
        children = list(self._children)
        for child in children:
            child.cancel()
        await asyncio.gather(*children, return_exceptions=True)

    def place(self, image: ImageManifest, *, family: str, revision: int) -> Task:
        """A new task of the service running ``image`` (its ENI comes while it starts)."""
        cluster = self.cluster
        task_id = new_task_id()
        return Task(
            id=task_id,
            service=self.name,
            cluster=cluster.spec.cluster.name,
            region=cluster.spec.region,
            family=family,
            revision=revision,
            port=cluster.network.container_port(self.service.port),
            cpu=self.service.cpu,
            memory=self.service.memory,
            image=image,
            log_path=cluster.log_dir / self.name / f"{task_id}.log",
        )

    async def start(self, task: Task) -> None:
        """Provision and launch ``task``; return once it listens and is registered, or has
        failed (stopped with ECS's reason: ENI attachment, image pull or container start)."""
        stage = "ResourceInitializationError"
        try:
            task.eni = await self.cluster.network.attach_network_interface(
                self.name, f"task {task.id} of service {self.name}"
            )
            if task.desired_status is not TaskStatus.RUNNING:
                if task.stopped.is_set():  # its stop finished before the ENI was there
                    await self.cluster.network.detach_network_interface(task.eni)
                return
            # As the ECS agent: the task's secrets first (with the execution role), then the
            # image. The values stay in this frame and the process's environment, nowhere else.
            secrets = self.cluster.hooks.secrets(task)
            stage = "CannotPullContainerError"
            task.pull_started_at = now()
            task.root = (await self.cluster.images.pull_image(task.image, task.eni)).root
            task.pull_stopped_at = now()
            stage = "CannotStartContainerError"
            await self._launch_and_register(task, secrets)
        except Exception as err:
            if task.desired_status is TaskStatus.RUNNING:
                self.policy.start_failed(task, f"task {task.id} could not start: {err}")
                self.begin_stop(task, f"{stage}: {err}", drain=False)

    async def _launch_and_register(self, task: Task, secrets: dict[str, str]) -> None:
        cluster = self.cluster
        task.last_status = TaskStatus.PENDING
        assert task.eni is not None and task.root is not None
        argv, environment, cwd = task_process_of(task, cluster.hooks, cluster.network, secrets)
        with cluster.logs.attach(task.log_path) as log:
            process = await cluster.network.launch(
                argv, eni=task.eni, port=task.port, env=environment, cwd=cwd, log=log
            )
        task.process = process
        cluster.record_pid(task)
        self.spawn(self._watch_exit(task, process), f"watch {task.id}")
        if task.stopped.is_set():  # stopped while launching: its stop found no process
            signal_group(process.pid, signal.SIGKILL)
            return

        def wanted() -> bool:
            return task.desired_status is TaskStatus.RUNNING

        timeout = cluster.start_timeout
        listening = await wait_listening(
            task.ip,
            task.port,
            process,
            timeout=timeout,
            still_wanted=wanted,
            open_connection=cluster.network.open_connection,
        )
        if not wanted() or process.returncode is not None:
            return  # stopped meanwhile, or exited: `_watch_exit` reports that
        if not listening:
            where = f"{task.ip}:{task.port}"
            self.policy.start_failed(
                task, f"task {task.id} did not listen on {where} in {timeout:g} s"
            )
            self.begin_stop(task, "Task failed to start listening", drain=False)
            return
        task.last_status = TaskStatus.RUNNING
        task.started_at = now()
        self.policy.event(f"started task {task.id} at {task.ip}:{task.port}")
        await cluster.hooks.register(task)
        if not wanted():  # stopped while registering: its deregistration may have come first
            await cluster.hooks.deregister(task, drain=False)
            return
        check = self.service.health_check
        namespaced = cluster.network.mode == "vpc"
        command = check_command(task, check, namespaced=namespaced)
        probe: Probe
        if command is not None:
            probe = CommandProbe(task, command, namespaced=namespaced)
        else:
            probe = http_probe(task, check.path, http=cluster.http)

        def changed(task: Task) -> None:
            self._container_health_changed(task, getattr(probe, "failure", ""))

        health = watch_container_health(
            task, check, probe=probe, clock=cluster.clock, on_change=changed
        )
        self.spawn(health, f"container health {task.id}")
        self.spawn(self._await_ready(task), f"readiness {task.id}")

    async def _await_ready(self, task: Task) -> None:
        """A task is in service once its container and every target group call it healthy."""
        hooks = self.cluster.hooks
        while task.desired_status is TaskStatus.RUNNING:
            if task.health is HealthStatus.HEALTHY and hooks.targets_healthy(task):
                task.ready.set()
                self.policy.task_ready(task)
                return
            await asyncio.sleep(READY_POLL_SECONDS)

    def _container_health_changed(self, task: Task, failure: str = "") -> None:
        self.cluster.hooks.health_changed(task)
        if task.health is HealthStatus.UNHEALTHY:
            if failure:  # a command's: what it said (ECS keeps it in the container's health)
                self.policy.event(f"task {task.id} failed its container health check: {failure}")
            self.policy.replace(task, "Task failed container health checks")

    async def _watch_exit(self, task: Task, process: asyncio.subprocess.Process) -> None:
        code = await process.wait()
        signal_group(process.pid, signal.SIGKILL)  # workers would keep the address and port
        self.cluster.forget_pid(task)
        if task.exit_code is None:
            task.exit_code = code
        if task.desired_status is TaskStatus.RUNNING:
            self.policy.exited(task, code)

    async def stop(self, task: Task, reason: str, *, drain: bool = True) -> None:
        """Deregister (and drain), then SIGTERM, stop timeout, SIGKILL; returns once stopped.

        A stop, once begun, finishes even if its caller is cancelled."""
        if not task.stopped.is_set():
            await asyncio.shield(self.begin_stop(task, reason, drain=drain))

    def begin_stop(self, task: Task, reason: str, *, drain: bool = True) -> asyncio.Task[None]:
        """Start stopping ``task`` (once; later calls get the stop in progress)."""
        stop = self._stops.get(task)
        if stop is None:
            if task.desired_status is TaskStatus.RUNNING or task.stopped_reason is None:
                task.stopped_reason = reason
            task.desired_status = TaskStatus.STOPPED
            stop = asyncio.create_task(self._stop(task, drain), name=f"stop {task.id}")
            self._stops[task] = stop
            stop.add_done_callback(self._done)
        return stop

    async def _stop(self, task: Task, drain: bool) -> None:
        task.last_status = TaskStatus.DEACTIVATING
        self.cluster.changed()
        try:
            if task.eni is not None:
                await self.cluster.hooks.deregister(task, drain=drain)
        except Exception as err:
            logger.error("deregistering task %s failed: %r", task.id, err, extra=self._about)
        task.last_status = TaskStatus.STOPPING
        try:
            if task.process is not None:
                await terminate(task.process, self.service.stop_timeout)
                if task.exit_code is None:
                    task.exit_code = task.process.returncode
            self.policy.event(f"stopped task {task.id}: {task.stopped_reason}")
        finally:
            await self._finish(task)

    async def _finish(self, task: Task) -> None:
        task.last_status = TaskStatus.STOPPED
        task.stopped_at = now()
        if task.eni is not None:  # as ECS: the ENI is detached once the task has stopped
            try:
                await self.cluster.network.detach_network_interface(task.eni)
            except Exception as err:
                logger.error(
                    "detaching %s of task %s failed: %r",
                    task.eni.id,
                    task.id,
                    err,
                    extra=self._about,
                )
        self.cluster.forget_pid(task)
        self.cluster.stopped_tasks.append(task)
        self._stops.pop(task, None)
        self.policy.task_stopped(task)
        task.stopped.set()
        self.cluster.changed()
