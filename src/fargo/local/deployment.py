"""Rolling deployments of an ECS service, within minimum healthy and maximum percent.

New tasks start while the old ones serve (up to ``max_percent`` of the desired
count in total); an old task is stopped — deregistered and drained first — only
when enough new ones are in service to keep ``min_healthy_percent``. A new task
that fails before it is in service trips the circuit breaker: the new tasks are
stopped, the old revision keeps running (rollback), and the deployment fails.
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING

from fargo.local.task import Task, TaskStatus

if TYPE_CHECKING:
    from fargo.local.ecs import ServiceScheduler
    from fargo.local.registry import ImageManifest


async def rolling_deployment(scheduler: ServiceScheduler, image: ImageManifest) -> bool:
    """Replace every task of ``scheduler`` with one running ``image``; False if rolled back."""
    service = scheduler.service
    desired = scheduler.desired_count
    max_total = math.floor(desired * service.max_percent / 100)
    min_healthy = math.ceil(desired * service.min_healthy_percent / 100)
    previous = scheduler.image
    scheduler.revision += 1
    scheduler.event(f"deployment of revision {scheduler.revision} ({image.uri}) started")
    old = scheduler.active()
    fresh: list[Task] = []
    while old:
        room = min(max_total - len(scheduler.active()), desired - len(fresh))
        started = await asyncio.gather(*(scheduler.run_task(image) for _ in range(max(room, 0))))
        fresh += started
        if not await _in_service(started):
            scheduler.event("a new task failed before it was in service: rolling back")
            await asyncio.gather(*(scheduler.stop_task(t, "Deployment rolled back") for t in fresh))
            scheduler.image = previous
            scheduler.revision -= 1
            return False
        if started:
            scheduler.image = image
        removable = len(scheduler.in_service()) - min_healthy
        if removable <= 0 and not started:
            scheduler.event(
                f"deployment stuck: {service.min_healthy_percent}% minimum healthy and "
                f"{service.max_percent}% maximum leave no room to replace a task"
            )
            return False
        batch, old = old[: max(removable, 0)], old[max(removable, 0) :]
        await asyncio.gather(*(scheduler.stop_task(t, "Deployment replaced task") for t in batch))
    scheduler.event(f"deployment of revision {scheduler.revision} completed")
    return True


async def _in_service(tasks: list[Task]) -> bool:
    """Wait until each task is in service or stopped; True if all made it."""

    async def settle(task: Task) -> bool:
        if task.desired_status is not TaskStatus.RUNNING:
            return False
        ready = asyncio.ensure_future(task.ready.wait())
        stopped = asyncio.ensure_future(task.stopped.wait())
        await asyncio.wait({ready, stopped}, return_when=asyncio.FIRST_COMPLETED)
        for waiter in (ready, stopped):
            waiter.cancel()
        return task.ready.is_set() and task.desired_status is TaskStatus.RUNNING

    return all(await asyncio.gather(*(settle(t) for t in tasks)))
