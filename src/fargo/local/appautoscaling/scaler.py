"""The part that scales the twin's services: every period (a minute on AWS, on the twin's
clock), each autoscaled service's datapoint, its target tracking policies, and the new
desired count if they say so — a scaling activity, in the service's events.

    scaler = ApplicationAutoScaling(spec, cluster, clock)   # a part, after the cluster

The scalable target's bounds are the spec's ``min_capacity`` and ``max_capacity``; the
desired count starts inside them. Scale-out tasks start, register and take traffic as any
task does; a scale-in drains the tasks it stops (the scheduler's own surplus handling).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fargo.local.appautoscaling.metrics import Datapoint, ServiceMeter
from fargo.local.appautoscaling.policy import (
    LOW_DATAPOINTS,
    SCALE_IN_COOLDOWN_SECONDS,
    SCALE_OUT_COOLDOWN_SECONDS,
    TargetTracking,
    combine,
)
from fargo.local.clock import TwinClock
from fargo.local.cloudwatch.period import period_seconds
from fargo.local.ecs.cluster import Cluster, ServiceScheduler
from fargo.local.ecs.task import TaskStatus
from fargo.local.loops import cancel_and_wait, keep_running
from fargo.spec import Spec

ACTIVITIES_KEPT = 50


@dataclass(frozen=True)
class ScalingActivity:
    """Application Auto Scaling's record of one change (DescribeScalingActivities)."""

    service: str
    start: datetime
    cause: str
    description: str  # "2 → 3 tasks"


@dataclass
class ScalableTarget:
    service: str
    bounds: tuple[int, int]
    policies: list[TargetTracking]
    meter: ServiceMeter
    cpu: deque[float | None] = field(default_factory=lambda: deque(maxlen=LOW_DATAPOINTS))
    memory: deque[float | None] = field(default_factory=lambda: deque(maxlen=LOW_DATAPOINTS))
    last_out: float | None = None
    last_in: float | None = None


class ApplicationAutoScaling:
    name = "Application Auto Scaling"

    def __init__(self, spec: Spec, cluster: Cluster, clock: TwinClock) -> None:
        self.cluster = cluster
        self.clock = clock
        self.targets: dict[str, ScalableTarget] = {}
        self.activities: deque[ScalingActivity] = deque(maxlen=ACTIVITIES_KEPT)
        for name, service in spec.services.items():
            scaling = service.autoscaling
            if scaling is None:
                continue
            policies = [
                TargetTracking(
                    metric,
                    target,
                    scale_out_cooldown=clock.interval(SCALE_OUT_COOLDOWN_SECONDS),
                    scale_in_cooldown=clock.interval(SCALE_IN_COOLDOWN_SECONDS),
                )
                for metric, target in (
                    ("CPUUtilization", scaling.target_cpu_utilization),
                    ("MemoryUtilization", scaling.target_memory_utilization),
                )
                if target is not None
            ]
            self.targets[name] = ScalableTarget(
                name,
                (scaling.min_capacity, scaling.max_capacity),
                policies,
                ServiceMeter(cpu_units=service.cpu, memory_mib=service.memory),
            )
        self._loop: asyncio.Task[None] | None = None

    def validate(self) -> list[str]:
        return []

    async def start(self) -> None:
        for target in self.targets.values():
            scheduler = self.cluster.services[target.service]
            low, high = target.bounds
            scheduler.desired_count = min(high, max(low, scheduler.desired_count))
        if self.targets:
            self._loop = keep_running("Application Auto Scaling", self._evaluate_forever)

    async def stop(self) -> None:
        loop, self._loop = self._loop, None
        await cancel_and_wait(loop)

    async def _evaluate_forever(self) -> None:
        period = period_seconds(self.clock)
        while True:
            await asyncio.sleep(period)
            for target in self.targets.values():
                scheduler = self.cluster.services[target.service]
                running = {
                    t.id: t.pid
                    for t in scheduler.active()
                    if t.last_status is TaskStatus.RUNNING and t.pid is not None
                }
                now = time.monotonic()
                # Reading the processes' counters blocks: off the event loop.
                point = await asyncio.to_thread(target.meter.measure, running, now=now)
                self.evaluate(target, point, now)

    def evaluate(self, target: ScalableTarget, point: Datapoint, now: float) -> None:
        """One period's datapoint, then what the policies decide."""
        scheduler = self.cluster.services[target.service]
        target.cpu.append(point.cpu)
        target.memory.append(point.memory)
        if scheduler.deploying:
            return  # a deployment drives the tasks; its new ones are measured from scratch
        capacity = scheduler.desired_count
        since_out = None if target.last_out is None else now - target.last_out
        since_in = None if target.last_in is None else now - target.last_in
        decisions = [
            policy.decide(
                target.cpu if policy.metric == "CPUUtilization" else target.memory,
                capacity=capacity,
                bounds=target.bounds,
                since_out=since_out,
                since_in=since_in,
            )
            for policy in target.policies
        ]
        decision = combine(decisions, capacity, len(target.policies))
        if decision is None:
            return
        if decision.desired > capacity:
            target.last_out = now
        else:
            target.last_in = now
        description = f"{capacity} → {decision.desired} tasks"
        self.activities.append(
            ScalingActivity(target.service, datetime.now(UTC), decision.reason, description)
        )
        set_desired(scheduler, decision.desired, f"{decision.reason}: {description}")


def set_desired(scheduler: ServiceScheduler, count: int, reason: str) -> None:
    scheduler.desired_count = count
    scheduler.event(f"Application Auto Scaling: {reason}")
    scheduler.wake()
