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
from fargo.spec.model import Service

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
    settings: object = None  # what the spec said of it: a changed spec makes it anew


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
        self.metrics = metrics
        self.elb = elb
        self.activities: deque[ScalingActivity] = deque(maxlen=ACTIVITIES_KEPT)
        self.targets: dict[str, ScalableTarget] = {}
        for name, service in spec.services.items():
            if (target := self._target(name, service)) is not None:
                self.targets[name] = target
        self._loop: asyncio.Task[None] | None = None
        self._started = False

    def _target(self, name: str, service: Service) -> ScalableTarget | None:
        """The scalable target the spec's ``service`` makes; None if it is not autoscaled."""
        scaling = service.autoscaling
        if scaling is None:
            return None
        out_cooldown = self.clock.interval(SCALE_OUT_COOLDOWN_SECONDS)
        in_cooldown = self.clock.interval(SCALE_IN_COOLDOWN_SECONDS)
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
            if self.metrics is None or self.elb is None:
                raise ValueError(f"{name}: a request count policy needs metrics and elb")
            policies.append(
                TargetTracking(
                    REQUESTS,
                    scaling.target_requests_per_target,
                    scale_out_cooldown=out_cooldown,
                    scale_in_cooldown=in_cooldown,
                    target_group=counted,
                )
            )
            requests = RequestCountPerTarget(
                counted, metrics=self.metrics, registered=self._registered
            )
        return ScalableTarget(
            name,
            (scaling.min_capacity, scaling.max_capacity),
            policies,
            ServiceMeter(cpu_units=service.cpu, memory_mib=service.memory),
            requests,
            settings=_settings(service),
        )

    def reconfigure(self, spec: Spec) -> None:
        """A spec applied to the running twin: each autoscaled service's target as it says
        now (one whose settings did not change keeps its datapoints and cooldowns), its
        desired count brought within the new bounds."""
        targets: dict[str, ScalableTarget] = {}
        for name, service in spec.services.items():
            kept = self.targets.get(name)
            if kept is not None and kept.settings == _settings(service):
                targets[name] = kept
            elif (target := self._target(name, service)) is not None:
                targets[name] = target
        self.targets = targets
        if self._started:
            self._bound()
            if self.targets and self._loop is None:
                self._loop = keep_running("Application Auto Scaling", self._evaluate_forever)

    def validate(self) -> list[str]:
        return []

    async def start(self) -> None:
        self._started = True
        self._bound()
        if self.targets:
            self._loop = keep_running("Application Auto Scaling", self._evaluate_forever)

    def _bound(self) -> None:
        """Each scalable target's desired count within its bounds."""
        for target in self.targets.values():
            scheduler = self.cluster.services.get(target.service)
            if scheduler is None:
                continue
            low, high = target.bounds
            bounded = min(high, max(low, scheduler.desired_count))
            if bounded != scheduler.desired_count:
                reason = f"desired count {scheduler.desired_count} outside {low}–{high}"
                set_desired(scheduler, bounded, f"{reason}: {bounded} tasks")

    async def stop(self) -> None:
        self._started = False
        loop, self._loop = self._loop, None
        await cancel_and_wait(loop)

    async def _evaluate_forever(self) -> None:
        period = period_seconds(self.clock)
        while True:
            await asyncio.sleep(period)
            for target in list(self.targets.values()):
                scheduler = self.cluster.services.get(target.service)
                if scheduler is None:
                    continue  # removed by a spec being applied
                running = {
                    t.id: t.pid
                    for t in scheduler.active()
                    if t.last_status is TaskStatus.RUNNING and t.pid is not None
                }
                now = time.monotonic()
                # Reading the processes' counters blocks: off the event loop.
                point = await asyncio.to_thread(target.meter.measure, running, now=now)
                if self.targets.get(target.service) is not target:
                    continue  # a spec applied meanwhile made it anew, or took it away
                if target.service not in self.cluster.services:
                    continue
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


def _settings(service: Service) -> object:
    """What of ``service`` its scalable target is made from."""
    return (service.autoscaling, service.cpu, service.memory, tuple(service.target_groups))


def set_desired(scheduler: ServiceScheduler, count: int, reason: str) -> None:
    scheduler.desired_count = count
    scheduler.event(f"Application Auto Scaling: {reason}")
    scheduler.wake()
