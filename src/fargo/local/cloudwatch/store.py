"""The last few minutes of each metric's one-period datapoints, in memory.

store = MetricStore(period_seconds=5, keep_seconds=300)
store.put(Metric("AWS/ApplicationELB", "RequestCount", {"LoadBalancer": "public"},
                 "Sum", "Count"), timestamp, 42.0)
store.describe(latest_only=True)     # a MetricsStatus
store.series("AWS/ApplicationELB", "RequestCount", {"TargetGroup": "api"})   # for a reader
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fargo.local.status import MetricDatapoint, MetricsStatus, MetricStatus

# How many periods old a metric's last datapoint may be to count as its current value.
CURRENT_PERIODS = 3


@dataclass(frozen=True)
class Metric:
    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    statistic: str
    unit: str

    @classmethod
    def of(
        cls, namespace: str, name: str, dimensions: Mapping[str, str], statistic: str, unit: str
    ) -> Metric:
        return cls(namespace, name, tuple(dimensions.items()), statistic, unit)


class MetricStore:
    """Thread-safe: the delivery thread and the event loop both read it."""

    def __init__(self, *, period_seconds: float, keep_seconds: float) -> None:
        self.period_seconds = period_seconds
        self._keep = max(1, round(keep_seconds / period_seconds))
        self._series: dict[Metric, deque[tuple[datetime, float]]] = {}
        self._lock = threading.Lock()

    def put(self, metric: Metric, timestamp: datetime, value: float) -> None:
        with self._lock:
            series = self._series.setdefault(metric, deque(maxlen=self._keep))
            series.append((timestamp, value))

    def series(
        self, namespace: str, name: str, dimensions: Mapping[str, str]
    ) -> dict[Metric, list[tuple[datetime, float]]]:
        """The kept datapoints, oldest first, of each metric ``name`` in ``namespace`` whose
        dimensions include ``dimensions`` (e.g. a target group's, on any load balancer)."""
        wanted = set(dimensions.items())
        with self._lock:
            return {
                metric: list(points)
                for metric, points in self._series.items()
                if metric.namespace == namespace
                and metric.name == name
                and wanted <= set(metric.dimensions)
            }

    def describe(self, *, latest_only: bool = False, now: datetime | None = None) -> MetricsStatus:
        """Every metric with a datapoint in the kept minutes; with ``latest_only``, its last
        datapoint, if that is one of the last `CURRENT_PERIODS` periods (a stopped task's
        metrics are not current)."""
        now = now or datetime.now(UTC)
        kept = timedelta(seconds=self.period_seconds * self._keep)
        with self._lock:
            for metric in [m for m, s in self._series.items() if s[-1][0] < now - kept]:
                del self._series[metric]
            items = [(m, list(s)[-1:] if latest_only else list(s)) for m, s in self._series.items()]
        if latest_only:
            current = now - timedelta(seconds=self.period_seconds * CURRENT_PERIODS)
            items = [(m, points) for m, points in items if points[-1][0] >= current]
        return MetricsStatus(
            period_seconds=self.period_seconds,
            metrics=[
                MetricStatus(
                    namespace=m.namespace,
                    metric_name=m.name,
                    dimensions=dict(m.dimensions),
                    statistic=m.statistic,
                    unit=m.unit,
                    datapoints=[MetricDatapoint(timestamp=t, value=v) for t, v in points],
                )
                for m, points in items
            ],
        )
