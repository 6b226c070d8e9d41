"""The twin's metrics: every period, one datapoint per metric, kept for a few minutes.

    collector = MetricsCollector(spec=lambda: runtime.spec, cluster=cluster, elb=elb, clock=clock)
    delivery = AccessLogDelivery(..., on_entry=collector.record)   # request metrics
    await collector.start()
    collector.describe()                    # the last few minutes (GET /metrics)
    collector.describe(latest_only=True)    # the current values (`fargo status`)

Every period (CloudWatch's minute on the twin's clock, `fargo.local.cloudwatch.period`:
6 s at the default time scale; on period boundaries) it closes the request metrics of
the load balancers (`fargo.local.cloudwatch.elb_metrics`, a second after the period
ends, so the access logs have been read), samples the tasks' kernel counters
(`fargo.local.cloudwatch.ecs_metrics`: the per-task Container Insights metrics only
when the spec's ``cluster.container_insights`` is on) and counts each target group's
HealthyHostCount and UnHealthyHostCount (targets in ``initial`` and ``draining`` are
neither, as on ALB). It keeps `KEEP_PERIODS` datapoints of each metric (five minutes
at the default scale).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

from fargo.local.clock import TwinClock
from fargo.local.cloudwatch.ecs_metrics import MeteredTask, TaskMeter
from fargo.local.cloudwatch.elb_metrics import NAMESPACE, RequestMetrics
from fargo.local.cloudwatch.period import period_seconds
from fargo.local.cloudwatch.store import Metric, MetricStore
from fargo.local.ecs.cluster import Cluster
from fargo.local.ecs.task import TaskStatus
from fargo.local.elb.access_log import AccessLogEntry
from fargo.local.elb.errors import TargetGroupNotFound
from fargo.local.elb.load_balancing import ElasticLoadBalancing
from fargo.local.elb.target_health import TargetState
from fargo.local.loops import cancel_and_wait, keep_running
from fargo.local.status import MetricsStatus
from fargo.spec.model import Spec

KEEP_PERIODS = 50
# How long after a period ends its access-log entries are surely read.
LOG_DELAY_SECONDS = 1.0


def routes(spec: Spec) -> dict[str, list[str]]:
    """Load balancer → the target groups its listeners forward to."""
    answer: dict[str, list[str]] = {}
    for name, lb in spec.load_balancers.items():
        groups: list[str] = []
        for listener in lb.listeners:
            for action in [listener.default_action, *(r.action for r in listener.rules)]:
                groups += [w.target_group for w in action.weighted_target_groups()]
        answer[name] = sorted(set(groups))
    return answer


class MetricsCollector:
    name = "metrics (CloudWatch)"

    def __init__(
        self,
        *,
        spec: Callable[[], Spec],
        cluster: Cluster,
        elb: ElasticLoadBalancing,
        clock: TwinClock,
        keep_periods: int = KEEP_PERIODS,
    ) -> None:
        self._spec = spec
        self.cluster = cluster
        self.elb = elb
        self.period_seconds = period_seconds(clock)
        self.store = MetricStore(
            period_seconds=self.period_seconds, keep_seconds=self.period_seconds * keep_periods
        )
        self.requests = RequestMetrics(period_seconds=self.period_seconds, routes=routes(spec()))
        self._meter = TaskMeter(cluster=spec().cluster.name)
        self._loop: asyncio.Task[None] | None = None
        # ``ip:port`` → target group of the registered targets, for the access-log thread
        # (replaced whole, never changed in place, so that thread reads it safely).
        self.targets: dict[str, str] = {}

    def validate(self) -> list[str]:
        return []

    def record(self, entry: AccessLogEntry) -> None:
        """One request the load balancers answered (called from the access-log thread)."""
        self.requests.record(entry)

    async def start(self) -> None:
        if self._loop is None:
            self._loop = keep_running("metrics", self._collect_forever)

    async def stop(self) -> None:
        loop, self._loop = self._loop, None
        await cancel_and_wait(loop)

    def describe(self, *, latest_only: bool = False) -> MetricsStatus:
        described = self.store.describe(latest_only=latest_only)
        insights = self._spec().cluster.container_insights
        return described.model_copy(update={"container_insights": insights})

    async def _collect_forever(self) -> None:
        while True:
            now = time.time()
            period_end = (now // self.period_seconds + 1) * self.period_seconds
            await asyncio.sleep(period_end + LOG_DELAY_SECONDS - now)
            await self.collect()

    async def collect(self) -> None:
        """One period's datapoints into the store."""
        spec = self._spec()
        self.requests.routes = routes(spec)
        for timestamp, metric, value in self.requests.close_periods(
            before=time.time() - LOG_DELAY_SECONDS
        ):
            self.store.put(metric, timestamp, value)
        now = time.time()
        timestamp = datetime.fromtimestamp(
            (now // self.period_seconds - 1) * self.period_seconds, UTC
        )
        for metric, value in self._host_counts(spec):
            self.store.put(metric, timestamp, value)
        tasks = [
            MeteredTask(t.id, t.service, t.pid, t.cpu, t.memory)
            for s in self.cluster.services.values()
            for t in s.active()
            if t.last_status is TaskStatus.RUNNING and t.pid is not None
        ]
        services = list(self.cluster.services)
        insights = spec.cluster.container_insights
        # Reading the processes' counters blocks: off the event loop.
        points = await asyncio.to_thread(
            lambda: list(
                self._meter.measure(
                    tasks, now=time.monotonic(), container_insights=insights, services=services
                )
            )
        )
        for metric, value in points:
            self.store.put(metric, timestamp, value)

    def _host_counts(self, spec: Spec) -> list[tuple[Metric, float]]:
        points = []
        targets: dict[str, str] = {}
        for lb, groups in routes(spec).items():
            for group in groups:
                try:
                    described = self.elb.describe_target_health(group)
                except TargetGroupNotFound:
                    continue  # a spec being applied: the group comes or goes
                targets.update({f"{d.target.ip}:{d.target.port}": group for d in described})
                states = [d.state for d in described]
                dims = {"LoadBalancer": lb, "TargetGroup": group}
                healthy = sum(s is TargetState.HEALTHY for s in states)
                unhealthy = sum(s is TargetState.UNHEALTHY for s in states)
                points.append((_hosts("HealthyHostCount", dims), float(healthy)))
                points.append((_hosts("UnHealthyHostCount", dims), float(unhealthy)))
        self.targets = targets
        return points


def _hosts(name: str, dimensions: dict[str, str]) -> Metric:
    return Metric.of(NAMESPACE, name, dimensions, "Average", "Count")
