"""The last few minutes of each metric's one-period datapoints, in memory.

store = MetricStore(period_seconds=5, keep_seconds=300)
store.put(Metric("AWS/ApplicationELB", "RequestCount", {"LoadBalancer": "public"},
                 "Sum", "Count"), timestamp, 42.0)
store.describe(latest_only=True)     # a MetricsStatus
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from fargo.local.status import MetricDatapoint, MetricsStatus, MetricStatus


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

    def __init__(self, *, period_seconds: int, keep_seconds: int) -> None:
        self.period_seconds = period_seconds
        self._keep = max(1, keep_seconds // period_seconds)
        self._series: dict[Metric, deque[tuple[datetime, float]]] = {}
        self._lock = threading.Lock()

    def put(self, metric: Metric, timestamp: datetime, value: float) -> None:
        with self._lock:
            series = self._series.setdefault(metric, deque(maxlen=self._keep))
            series.append((timestamp, value))

    def describe(self, *, latest_only: bool = False) -> MetricsStatus:
        with self._lock:
            items = [(m, list(s)[-1:] if latest_only else list(s)) for m, s in self._series.items()]
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
