"""The part that scales the twin's services: every period (a minute on AWS, on the twin's
clock), each autoscaled service's datapoints, its target tracking policies, and the new
desired count if they say so — a scaling activity, in the service's events.

    scaler = ApplicationAutoScaling(spec, cluster, clock, metrics=collector.store, elb=elb)
    # a part, after the cluster

A service's CPUUtilization and MemoryUtilization are measured here, each period; its
target group's ALBRequestCountPerTarget comes from the metrics collector's request counts
(``metrics``, with ``elb`` for the registered targets: `requests`), each period it closed.

The scalable target's bounds are the spec's ``min_capacity`` and ``max_capacity``; the
desired count starts inside them. Scale-out tasks start, register and take traffic as any
task does; a scale-in drains the tasks it stops (the scheduler's own surplus handling).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fargo.local.appautoscaling.metrics import Datapoint, ServiceMeter
from fargo.local.appautoscaling.policy import (
    CPU,
    LOW_DATAPOINTS,
    MEMORY,
    REQUESTS,
    SCALE_IN_COOLDOWN_SECONDS,
    SCALE_OUT_COOLDOWN_SECONDS,
    TargetTracking,
    combine,
)
from fargo.local.appautoscaling.requests import RequestCountPerTarget
from fargo.local.clock import TwinClock
from fargo.local.cloudwatch.period import period_seconds
from fargo.local.cloudwatch.store import MetricStore
from fargo.local.ecs.cluster import Cluster, ServiceScheduler
from fargo.local.ecs.task import TaskStatus
from fargo.local.elb.errors import TargetGroupNotFound
from fargo.local.elb.load_balancing import ElasticLoadBalancing
from fargo.local.elb.target_health import TargetState
from fargo.local.loops import cancel_and_wait, keep_running
from fargo.spec import Spec
from fargo.spec.autoscaling import request_target_group

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
    requests: RequestCountPerTarget | None = None  # with a request count policy
    # Each tracked metric's last datapoints, oldest first (CPU, MEMORY, REQUESTS).
    datapoints: dict[str, deque[float | None]] = field(
        default_factory=lambda: {
            metric: deque(maxlen=LOW_DATAPOINTS) for metric in (CPU, MEMORY, REQUESTS)
        }
    )
    last_out: float | None = None
    last_in: float | None = None


class ApplicationAutoScaling:
    name = "Application Auto Scaling"

    def __init__(
        self,
        spec: Spec,
        cluster: Cluster,
        clock: TwinClock,
        *,
        metrics: MetricStore | None = None,
        elb: ElasticLoadBalancing | None = None,
    ) -> None:
        """``metrics`` and ``elb``: the request counts and target groups a request count
        policy reads (a spec with one and without them is an error)."""
        self.cluster = cluster
        self.clock = clock
        self.elb = elb
        self.targets: dict[str, ScalableTarget] = {}
        self.activities: deque[ScalingActivity] = deque(maxlen=ACTIVITIES_KEPT)
        out_cooldown = clock.interval(SCALE_OUT_COOLDOWN_SECONDS)
        in_cooldown = clock.interval(SCALE_IN_COOLDOWN_SECONDS)
        for name, service in spec.services.items():
            scaling = service.autoscaling
            if scaling is None:
                continue
            policies = [
                TargetTracking(
                    metric, target, scale_out_cooldown=out_cooldown, scale_in_cooldown=in_cooldown
                )
                for metric, target in (
                    (CPU, scaling.target_cpu_utilization),
                    (MEMORY, scaling.target_memory_utilization),
                )
                if target is not None
            ]
            requests = None
            counted = request_target_group(service)
            if scaling.target_requests_per_target is not None and counted is not None:
                if metrics is None or elb is None:
                    raise ValueError(f"{name}: a request count policy needs metrics and elb")
                policies.append(
                    TargetTracking(
                        REQUESTS,
                        scaling.target_requests_per_target,
                        scale_out_cooldown=out_cooldown,
                        scale_in_cooldown=in_cooldown,
                        unit="Count",
                        target_group=counted,
                    )
                )
                requests = RequestCountPerTarget(
                    counted, metrics=metrics, registered=self._registered
                )
            self.targets[name] = ScalableTarget(
                name,
                (scaling.min_capacity, scaling.max_capacity),
                policies,
                ServiceMeter(cpu_units=service.cpu, memory_mib=service.memory),
                requests,
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
                requests = target.requests.take() if target.requests is not None else []
                self.evaluate(target, point, now, requests=requests)

    def evaluate(
        self,
        target: ScalableTarget,
        point: Datapoint,
        now: float,
        *,
        requests: Sequence[float | None] = (),
    ) -> None:
        """One period's datapoint (and the request count periods closed since the last
        one), then what the policies decide."""
        scheduler = self.cluster.services[target.service]
        target.datapoints[CPU].append(point.cpu)
        target.datapoints[MEMORY].append(point.memory)
        target.datapoints[REQUESTS].extend(requests)
        if scheduler.deploying:
            return  # a deployment drives the tasks; its new ones are measured from scratch
        capacity = scheduler.desired_count
        since_out = None if target.last_out is None else now - target.last_out
        since_in = None if target.last_in is None else now - target.last_in
        decisions = [
            policy.decide(
                target.datapoints[policy.metric],
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

    def _registered(self, target_group: str) -> int:
        """The targets registered in ``target_group`` now, draining ones not."""
        assert self.elb is not None
        try:
            described = self.elb.describe_target_health(target_group)
        except TargetGroupNotFound:
            return 0  # a spec being applied: the group comes or goes
        return sum(d.state is not TargetState.DRAINING for d in described)


def set_desired(scheduler: ServiceScheduler, count: int, reason: str) -> None:
    scheduler.desired_count = count
    scheduler.event(f"Application Auto Scaling: {reason}")
    scheduler.wake()
