"""AWS/ApplicationELB request metrics, counted from the load balancers' access-log entries.

    requests = RequestMetrics(period_seconds=5)
    requests.record(entry)                     # each AccessLogEntry, from the delivery thread
    for timestamp, metric, value in requests.close_periods(before=time.time() - 1): ...

Per load balancer and target group (dimensions LoadBalancer, TargetGroup): RequestCount,
HTTPCode_Target_2XX/3XX/4XX/5XX_Count and TargetResponseTime (Average, p50, p95, p99,
seconds, of the requests a target answered); per load balancer: RequestCount and
HTTPCode_ELB_3XX/4XX/5XX_Count (answers the load balancer made itself: no target, a
failed target, a redirect or fixed response). A period is counted by the time its
requests were answered; an entry that arrives after its period was closed counts in
the next one. Every load balancer and target group the spec routes to gets a
datapoint each period, zero when idle.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fargo.local.cloudwatch.store import Metric
from fargo.local.elb.access_log import AccessLogEntry

NAMESPACE = "AWS/ApplicationELB"
PERCENTILES = (50, 95, 99)
STATUS_CLASSES = ("2XX", "3XX", "4XX", "5XX")


@dataclass
class _GroupCounts:
    requests: int = 0
    target_codes: dict[str, int] = field(default_factory=dict)
    response_times: list[float] = field(default_factory=list)


@dataclass
class _Period:
    requests: dict[str, int] = field(default_factory=dict)  # load balancer → count
    elb_codes: dict[tuple[str, str], int] = field(default_factory=dict)  # (lb, 5XX) → count
    groups: dict[tuple[str, str], _GroupCounts] = field(default_factory=dict)  # (lb, tg)


class RequestMetrics:
    def __init__(
        self, *, period_seconds: float, routes: Mapping[str, list[str]] | None = None
    ) -> None:
        """``routes``: load balancer → the target groups it forwards to (zeros when idle)."""
        self.period_seconds = period_seconds
        self.routes = dict(routes or {})
        self._periods: dict[int, _Period] = {}
        self._closed = -1  # the last period closed
        self._lock = threading.Lock()

    def record(self, entry: AccessLogEntry) -> None:
        index = max(int(entry.time // self.period_seconds), self._closed + 1)
        lb = entry.load_balancer
        with self._lock:
            period = self._periods.setdefault(index, _Period())
            period.requests[lb] = period.requests.get(lb, 0) + 1
            if entry.target_status_code is None:
                code = f"{entry.elb_status_code // 100}XX"
                period.elb_codes[(lb, code)] = period.elb_codes.get((lb, code), 0) + 1
            if entry.target_group is None:
                return
            group = period.groups.setdefault((lb, entry.target_group), _GroupCounts())
            group.requests += 1
            if entry.target_status_code is not None:
                code = f"{entry.target_status_code // 100}XX"
                group.target_codes[code] = group.target_codes.get(code, 0) + 1
                group.response_times.append(entry.target_processing_time)

    def close_periods(self, *, before: float) -> Iterator[tuple[datetime, Metric, float]]:
        """The datapoints of every period that ended before the epoch second ``before``."""
        last = int(before // self.period_seconds) - 1
        with self._lock:
            if last <= self._closed:
                return
            first = self._closed + 1 if self._closed >= 0 else last
            closing = [(i, self._periods.pop(i, _Period())) for i in range(first, last + 1)]
            for index in [i for i in self._periods if i < first]:
                del self._periods[index]  # older than the first period ever closed
            self._closed = last
        for index, period in closing:
            timestamp = datetime.fromtimestamp(index * self.period_seconds, UTC)
            for metric, value in self._datapoints(period):
                yield timestamp, metric, value

    def _datapoints(self, period: _Period) -> Iterator[tuple[Metric, float]]:
        lbs = sorted(set(self.routes) | set(period.requests))
        for lb in lbs:
            dims = {"LoadBalancer": lb}
            yield _count("RequestCount", dims), float(period.requests.get(lb, 0))
            for code in ("3XX", "4XX", "5XX"):
                value = float(period.elb_codes.get((lb, code), 0))
                yield _count(f"HTTPCode_ELB_{code}_Count", dims), value
        pairs = {(lb, tg) for lb, groups in self.routes.items() for tg in groups}
        for lb, tg in sorted(pairs | set(period.groups)):
            dims = {"LoadBalancer": lb, "TargetGroup": tg}
            counts = period.groups.get((lb, tg), _GroupCounts())
            yield _count("RequestCount", dims), float(counts.requests)
            for code in STATUS_CLASSES:
                value = float(counts.target_codes.get(code, 0))
                yield _count(f"HTTPCode_Target_{code}_Count", dims), value
            times = sorted(counts.response_times)
            if not times:
                continue
            seconds = Metric.of(NAMESPACE, "TargetResponseTime", dims, "Average", "Seconds")
            yield seconds, sum(times) / len(times)
            for percentile in PERCENTILES:
                metric = Metric.of(
                    NAMESPACE, "TargetResponseTime", dims, f"p{percentile}", "Seconds"
                )
                yield metric, nearest_rank(times, percentile)


def nearest_rank(ordered: list[float], percentile: float) -> float:
    """The nearest-rank percentile of an ascending, non-empty list."""
    rank = max(1, math.ceil(percentile / 100 * len(ordered)))
    return ordered[rank - 1]


def _count(name: str, dimensions: Mapping[str, str]) -> Metric:
    return Metric.of(NAMESPACE, name, dimensions, "Sum", "Count")
