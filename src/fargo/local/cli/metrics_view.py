"""The twin's metrics as tables: what ``fargo top`` refreshes and ``fargo status`` ends with.

    render_metrics(status.metrics)
    # services (AWS/ECS, last 6 s):
    #   SERVICE          CPU %  MEMORY %
    #   backend-public     3.1      12.0
    # target groups (AWS/ApplicationELB):
    #   LOAD BALANCER  TARGET GROUP    REQUESTS  REQ/S  2XX  4XX  5XX  P50 MS  P95 MS  ...
    # load balancers:  ...   tasks (ECS/ContainerInsights): ...

Each value is the metric's latest datapoint (one period); ``-`` where there is none yet.
With Container Insights off (the spec's ``cluster.container_insights``) there are no
per-task metrics, as on AWS: the tasks' section says so and points to ``fargo ps``.
"""

from __future__ import annotations

from fargo.local.cli.status_view import table
from fargo.local.status import MetricsStatus, MetricStatus

SHORT_ID = 12


def render_metrics(metrics: MetricsStatus) -> list[str]:
    period = metrics.period_seconds
    latest = _Latest(metrics.metrics)
    lines = [f"services (AWS/ECS, last {period:g} s):"]
    lines += table(
        ["SERVICE", "CPU %", "MEMORY %"],
        [
            [s, latest.text("CPUUtilization", s), latest.text("MemoryUtilization", s)]
            for s in latest.dimension_values("AWS/ECS", "ServiceName")
        ],
        empty="(no datapoint yet)",
    )
    lines += ["", "target groups (AWS/ApplicationELB):"]
    rows = []
    for lb, group in latest.pairs():
        dims = {"LoadBalancer": lb, "TargetGroup": group}
        requests = latest.value("RequestCount", dims)
        rows.append(
            [
                lb,
                group,
                _number(requests),
                _rate(requests, period),
                *(_number(latest.value(f"HTTPCode_Target_{c}_Count", dims)) for c in CODES),
                *(_ms(latest.value("TargetResponseTime", dims, f"p{p}")) for p in (50, 95, 99)),
                _number(latest.value("HealthyHostCount", dims)),
                _number(latest.value("UnHealthyHostCount", dims)),
            ]
        )
    lines += table(
        [
            "LOAD BALANCER",
            "TARGET GROUP",
            "REQUESTS",
            "REQ/S",
            *CODES,
            "P50 MS",
            "P95 MS",
            "P99 MS",
            "HEALTHY",
            "UNHEALTHY",
        ],
        rows,
        empty="(no datapoint yet)",
    )
    lines += ["", "load balancers (AWS/ApplicationELB):"]
    rows = []
    for lb in latest.dimension_values("AWS/ApplicationELB", "LoadBalancer", alone=True):
        dims = {"LoadBalancer": lb}
        requests = latest.value("RequestCount", dims)
        rows.append(
            [
                lb,
                _number(requests),
                _rate(requests, period),
                _number(latest.value("HTTPCode_ELB_4XX_Count", dims)),
                _number(latest.value("HTTPCode_ELB_5XX_Count", dims)),
            ]
        )
    lines += table(["LOAD BALANCER", "REQUESTS", "REQ/S", "ELB 4XX", "ELB 5XX"], rows)
    if not metrics.container_insights:
        return [*lines, "", *CONTAINER_INSIGHTS_OFF]
    lines += ["", "tasks (ECS/ContainerInsights):"]
    rows = []
    for task in latest.dimension_values("ECS/ContainerInsights", "TaskId"):
        service = latest.dimension_of("ECS/ContainerInsights", "TaskId", task, "ServiceName")
        dims = {"ServiceName": service, "TaskId": task}
        rows.append(
            [
                task[:SHORT_ID],
                service,
                _fixed(latest.value("CPUUtilization", dims)),
                _fixed(latest.value("CpuUtilized", dims)),
                _fixed(latest.value("MemoryUtilized", dims), 0),
                _fixed(latest.value("MemoryUtilization", dims)),
            ]
        )
    lines += table(
        ["TASK", "SERVICE", "CPU %", "CPU UNITS", "MEMORY MB", "MEMORY %"],
        rows,
        empty="(no datapoint yet)",
    )
    return lines


CODES = ("2XX", "4XX", "5XX")
CONTAINER_INSIGHTS_OFF = [
    "tasks: Container Insights off (cluster.container_insights: false in the spec), so no",
    "  per-task metrics, as on AWS; `fargo ps` shows each task's CPU and memory",
]


class _Latest:
    def __init__(self, metrics: list[MetricStatus]) -> None:
        self.metrics = [m for m in metrics if m.datapoints]

    def value(
        self, name: str, dimensions: dict[str, str], statistic: str | None = None
    ) -> float | None:
        for metric in self.metrics:
            if metric.metric_name != name or (statistic and metric.statistic != statistic):
                continue
            dims = {k: v for k, v in metric.dimensions.items() if k != "ClusterName"}
            if dims == dimensions:  # exactly: not a task's metric for its service's
                return metric.datapoints[-1].value
        return None

    def text(self, name: str, service: str) -> str:
        return _fixed(self.value(name, {"ServiceName": service}))

    def dimension_values(self, namespace: str, key: str, *, alone: bool = False) -> list[str]:
        values = []
        for metric in self.metrics:
            if metric.namespace != namespace or key not in metric.dimensions:
                continue
            if alone and len(metric.dimensions) > 1:
                continue
            value = metric.dimensions[key]
            if value not in values:
                values.append(value)
        return values

    def dimension_of(self, namespace: str, key: str, value: str, wanted: str) -> str:
        for metric in self.metrics:
            if metric.namespace == namespace and metric.dimensions.get(key) == value:
                return metric.dimensions.get(wanted, "-")
        return "-"

    def pairs(self) -> list[tuple[str, str]]:
        pairs: list[tuple[str, str]] = []
        for metric in self.metrics:
            dims = metric.dimensions
            if "TargetGroup" in dims and "LoadBalancer" in dims:
                pair = (dims["LoadBalancer"], dims["TargetGroup"])
                if pair not in pairs:
                    pairs.append(pair)
        return pairs


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _rate(count: float | None, period: float) -> str:
    return "-" if count is None else f"{count / period:.1f}"


def _fixed(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"
