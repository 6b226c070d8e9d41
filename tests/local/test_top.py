"""``fargo top``: the metrics' tables, and the command without a twin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.cli import run_fargo

from fargo.local.cli.top import render
from fargo.local.clock import TwinClock
from fargo.local.cloudwatch.period import period_seconds
from fargo.local.cloudwatch.store import Metric, MetricStore

NOW = datetime(2026, 12, 3, 6, 0, 5, tzinfo=UTC)
GROUP = {"LoadBalancer": "public", "TargetGroup": "backend-public"}
SERVICE = {"ClusterName": "fargo-demo", "ServiceName": "backend-public"}
TASK = {**SERVICE, "TaskId": "8bdca42335f7" + "0" * 20}


def metrics_store() -> MetricStore:
    store = MetricStore(period_seconds=5, keep_seconds=300)
    points = [
        (Metric.of("AWS/ECS", "CPUUtilization", SERVICE, "Average", "Percent"), 42.5),
        (Metric.of("AWS/ECS", "MemoryUtilization", SERVICE, "Average", "Percent"), 9.7),
        (Metric.of("ECS/ContainerInsights", "CPUUtilization", TASK, "Average", "Percent"), 85.0),
        (Metric.of("ECS/ContainerInsights", "CpuUtilized", TASK, "Average", "None"), 217.6),
        (Metric.of("ECS/ContainerInsights", "MemoryUtilized", TASK, "Average", "Megabytes"), 50.2),
        (Metric.of("AWS/ApplicationELB", "RequestCount", GROUP, "Sum", "Count"), 500.0),
        (
            Metric.of("AWS/ApplicationELB", "HTTPCode_Target_2XX_Count", GROUP, "Sum", "Count"),
            497.0,
        ),
        (Metric.of("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", GROUP, "Sum", "Count"), 3.0),
        (Metric.of("AWS/ApplicationELB", "TargetResponseTime", GROUP, "p99", "Seconds"), 0.0123),
        (Metric.of("AWS/ApplicationELB", "HealthyHostCount", GROUP, "Average", "Count"), 2.0),
        (
            Metric.of(
                "AWS/ApplicationELB", "RequestCount", {"LoadBalancer": "public"}, "Sum", "Count"
            ),
            510.0,
        ),
        (
            Metric.of(
                "AWS/ApplicationELB",
                "HTTPCode_ELB_5XX_Count",
                {"LoadBalancer": "public"},
                "Sum",
                "Count",
            ),
            10.0,
        ),
    ]
    for metric, value in points:
        store.put(metric, NOW - timedelta(seconds=5), value)
    return store


def row(lines: list[str], first: str, after: str) -> list[str]:
    start = next(i for i, line in enumerate(lines) if line.startswith(after))
    return next(line.split() for line in lines[start:] if line.split()[:1] == [first])


def test_the_tables_show_each_metrics_latest_value() -> None:
    lines = render(metrics_store().describe(latest_only=True, now=NOW), now=NOW)
    assert lines[0].startswith("fargo top — 06:00:05 UTC")
    assert row(lines, "backend-public", "services") == ["backend-public", "42.5", "9.7"]
    group = row(lines, "public", "target groups")
    assert group[:8] == ["public", "backend-public", "500", "100.0", "497", "-", "3", "-"]
    assert group[-3:] == ["12.3", "2", "-"]  # p99 ms, healthy, unhealthy (no datapoint)
    assert row(lines, "public", "load balancers") == ["public", "510", "102.0", "-", "10"]
    task = row(lines, "8bdca42335f7", "tasks")  # the task's own CPU, not its service's
    assert task == ["8bdca42335f7", "backend-public", "85.0", "217.6", "50", "-"]


def test_without_a_twin_top_says_so(tmp_path: Path) -> None:
    result = run_fargo("top", "--once", "--state-dir", str(tmp_path / "none"))
    assert result.returncode == 1
    assert result.stderr.startswith("fargo top: ") and "control plane" in result.stderr


def test_the_period_is_cloudwatchs_minute_on_the_twins_clock() -> None:
    assert period_seconds(TwinClock(0.1)) == 6.0  # not 6.000000000000001
    assert period_seconds(TwinClock(0.02)) == 1.2
    assert period_seconds(TwinClock.aws()) == 60.0
    store = MetricStore(period_seconds=period_seconds(TwinClock(0.1)), keep_seconds=300)
    lines = render(store.describe(latest_only=True, now=NOW), now=NOW)
    assert lines[0].endswith("one datapoint per 6 s (CloudWatch's 60 s on the twin's clock)")
    assert "services (AWS/ECS, last 6 s):" in lines


def test_with_container_insights_off_the_tasks_section_says_so() -> None:
    described = metrics_store().describe(latest_only=True, now=NOW)
    lines = render(described.model_copy(update={"container_insights": False}), now=NOW)
    text = "\n".join(lines)
    assert "tasks: Container Insights off (cluster.container_insights: false in the spec)" in text
    assert "`fargo ps` shows each task's CPU and memory" in text
    assert "tasks (ECS/ContainerInsights):" not in text
    assert not any(line.split()[:1] == ["8bdca42335f7"] for line in lines)
    # ECS's per-service metrics stay: AWS publishes them without Container Insights
    assert row(lines, "backend-public", "services") == ["backend-public", "42.5", "9.7"]
