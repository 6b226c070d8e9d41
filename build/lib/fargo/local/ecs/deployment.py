"""Rolling deployments of an ECS service, within minimum healthy and maximum percent.

    completed = await rolling_deployment(scheduler, image)  # False: rolled back

New tasks start while the old ones serve (at most ``max_percent`` of the desired
count active in total); an old task is stopped — deregistered and drained first —
only while enough tasks stay in service for ``min_healthy_percent``. The deployment
completes when the desired count of new tasks is in service and no old task is left.

Circuit breaker (as ECS's): a new task that stops before it is in service is a
failed task and is replaced, until `failure_threshold` tasks have failed; then the
deployment rolls back — the new tasks stop, the service returns to the previous
image and revision, and the scheduler restores its desired count. A deployment
that has not completed after ``timeout`` rolls back too.

Deployments of one service never interleave: a second one waits until the first
has finished (the scheduler's ``deployment_lock``).
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING

from fargo.local.ecs.task import Task, TaskStatus

if TYPE_CHECKING:
    from fargo.local.ecr.registry import ImageManifest
    from fargo.local.ecs.cluster import ServiceScheduler

# Below the 600 s the CLI waits for the answer of `fargo update-service`.
DEPLOYMENT_TIMEOUT_SECONDS = 540.0


def failure_threshold(desired: int) -> int:
    """Failed tasks that trip ECS's circuit breaker: half the desired count, 3 to 200."""
    return max(3, min(200, math.ceil(0.5 * desired)))


async def rolling_deployment(
    scheduler: ServiceScheduler,
    image: ImageManifest,
    *,
    timeout: float = DEPLOYMENT_TIMEOUT_SECONDS,
) -> bool:
    """Replace every task of ``scheduler`` with one running ``image``; False if rolled back."""
    async with scheduler.deployment_lock:
        scheduler.deploying = True
        rollout = _Rollout(scheduler, image)
        try:
            try:
                async with asyncio.timeout(timeout):
                    completed = await rollout.run()
            except TimeoutError:
                scheduler.event(f"deployment did not complete within {timeout:g} s")
                completed = False
            if not completed:
                await rollout.roll_back()
            return completed
        finally:
            scheduler.deploying = False
            scheduler.wake()


class _Rollout:
    """One deployment's bookkeeping: the tasks it found, the ones it started, failures."""

    def __init__(self, scheduler: ServiceScheduler, image: ImageManifest) -> None:
        service = scheduler.service
        self.scheduler = scheduler
        self.image = image
        self.desired = scheduler.desired_count
        self.max_active = math.floor(self.desired * service.max_percent / 100)
        self.min_healthy = math.ceil(self.desired * service.min_healthy_percent / 100)
        self.threshold = failure_threshold(self.desired)
        self.previous = (scheduler.image, scheduler.revision)
        self.old = scheduler.active()
        self.new: list[Task] = []
        self.failures = 0

    async def run(self) -> bool:
        scheduler = self.scheduler
        scheduler.revision += 1
        scheduler.event(f"deployment of revision {scheduler.revision} ({self.image.uri}) started")
        while not scheduler.stopping:
            old = _running(self.old)
            new = _running(self.new)
            if not old and len(new) >= self.desired:
                scheduler.event(f"deployment of revision {scheduler.revision} completed")
                return True
            room = min(self.max_active - len(old) - len(new), self.desired - len(new))
            room = min(room, self.threshold - self.failures)  # no more than may fail
            if room > 0 and not await self._start(room):
                if self.failures >= self.threshold:
                    scheduler.event(
                        f"circuit breaker: {self.failures} new tasks failed "
                        f"(threshold {self.threshold}); rolling back"
                    )
                    return False
                continue  # replace the failed ones
            stoppable = self._stoppable(_running(self.old))
            if not stoppable and room <= 0:
                scheduler.event(
                    f"deployment stuck: {scheduler.service.min_healthy_percent}% minimum "
                    f"healthy and {scheduler.service.max_percent}% maximum leave no room "
                    "to replace a task"
                )
                return False
            await asyncio.gather(
                *(scheduler.stop_task(t, "Deployment replaced task") for t in stoppable)
            )
        return False

    async def _start(self, count: int) -> bool:
        """Start ``count`` new tasks and wait until each is in service or stopped; True if
        all made it (the failures are counted)."""
        scheduler = self.scheduler
        started = await asyncio.gather(*(scheduler.run_task(self.image) for _ in range(count)))
        self.new += [t for t in started if t is not None]
        results = await asyncio.gather(*(_in_service(t) for t in started))
        if any(results):
            scheduler.image = self.image  # replacements the scheduler starts run it too
        failed = results.count(False)
        self.failures += failed
        if failed:
            scheduler.event(
                f"{failed} new task(s) failed before they were in service "
                f"({self.failures} of {self.threshold} the circuit breaker allows)"
            )
        return not failed

    def _stoppable(self, old: list[Task]) -> list[Task]:
        """Old tasks to stop now: those not in service, and as many in service as
        ``min_healthy_percent`` spares."""
        spare = len(self.scheduler.in_service()) - self.min_healthy
        serving = [t for t in old if t.ready.is_set()]
        return [t for t in old if not t.ready.is_set()] + serving[: max(spare, 0)]

    async def roll_back(self) -> None:
        scheduler = self.scheduler
        scheduler.image, scheduler.revision = self.previous
        # Every active task not there before is this deployment's (the scheduler stood
        # aside), also one whose start the deadline interrupted.
        started = [t for t in scheduler.active() if t not in self.old]
        await asyncio.gather(*(scheduler.stop_task(t, "Deployment rolled back") for t in started))
        # The failures were the new revision's; the previous one starts afresh.
        scheduler.failed_starts = 0
        scheduler.failure = None
        scheduler.event(f"rolled back to revision {scheduler.revision}")


def _running(tasks: list[Task]) -> list[Task]:
    return [t for t in tasks if t.desired_status is TaskStatus.RUNNING]


async def _in_service(task: Task | None) -> bool:
    """Wait until ``task`` is in service or stopped; True if it made it."""
    if task is None or task.desired_status is not TaskStatus.RUNNING:
        return False
    ready = asyncio.ensure_future(task.ready.wait())
    stopped = asyncio.ensure_future(task.stopped.wait())
    try:
        await asyncio.wait({ready, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ready.cancel()
        stopped.cancel()
    return task.ready.is_set() and task.desired_status is TaskStatus.RUNNING
