"""A target group's ALBRequestCountPerTarget, from the twin's CloudWatch metrics: what a
request count target tracking policy evaluates.

    requests = RequestCountPerTarget("api", metrics=collector.store, registered=count_targets)
    requests.take()   # [1200.0, 950.0]: each period closed since the last call, oldest first

On AWS it is the target group's RequestCount in a one-minute period over its healthy
targets (over its registered ones when none is healthy). The twin's period is that minute
on the twin's clock (`fargo.local.cloudwatch.period`: 6 s by default), but its requests
come at the rate they really come: the period's count is scaled to a minute of real time,
so the same load gives the same figure, and the same decision, at any ``--time-scale``
(as CPUUtilization, a share of real CPU time, does). `fargo top`'s RequestCount is the
period's own count.

The counts are the collector's (`fargo.local.cloudwatch.collector`: RequestCount per load
balancer and target group, from the one load balancer forwarding to the group, as the
spec allows no second (`fargo.spec.autoscaling`), and HealthyHostCount at the period's
end). A period without targets to divide by is a missing datapoint.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fargo.local.cloudwatch.elb_metrics import NAMESPACE
from fargo.local.cloudwatch.store import MetricStore

MINUTE_SECONDS = 60.0


class RequestCountPerTarget:
    def __init__(
        self, target_group: str, *, metrics: MetricStore, registered: Callable[[str], int]
    ) -> None:
        """``registered``: a target group's registered targets now (draining ones not)."""
        self.target_group = target_group
        self.metrics = metrics
        self.registered = registered
        self._taken: datetime | None = None  # the last period taken

    def take(self) -> list[float | None]:
        """The datapoints of the periods closed since the last call (requests a target a
        minute), oldest first; the first call takes every kept one."""
        dimensions = {"TargetGroup": self.target_group}
        counts: dict[datetime, float] = {}
        for points in self.metrics.series(NAMESPACE, "RequestCount", dimensions).values():
            for timestamp, value in points:
                counts[timestamp] = counts.get(timestamp, 0.0) + value
        healthy: dict[datetime, float] = {}
        for points in self.metrics.series(NAMESPACE, "HealthyHostCount", dimensions).values():
            for timestamp, value in points:  # one group: the same count on each load balancer
                healthy[timestamp] = max(healthy.get(timestamp, 0.0), value)
        fresh = sorted(t for t in counts if self._taken is None or t > self._taken)
        if fresh:
            self._taken = fresh[-1]
        per_minute = MINUTE_SECONDS / self.metrics.period_seconds
        taken: list[float | None] = []
        for timestamp in fresh:
            targets = healthy.get(timestamp) or self.registered(self.target_group)
            taken.append(counts[timestamp] / targets * per_minute if targets else None)
        return taken
