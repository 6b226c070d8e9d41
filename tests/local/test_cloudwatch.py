"""The twin's CloudWatch metrics: request metrics counted per period from access-log
entries, ECS metrics from real processes' counters, the store's few minutes."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from fargo.local.cloudwatch.ecs_metrics import MeteredTask, TaskMeter
from fargo.local.cloudwatch.elb_metrics import RequestMetrics, nearest_rank
from fargo.local.cloudwatch.store import Metric, MetricStore
from fargo.local.elb.access_log import AccessLogEntry

START = datetime(2026, 12, 3, 6, 0, 0, tzinfo=UTC)

ENTRY = AccessLogEntry(
    type="https",
    time=START.timestamp(),
    load_balancer="public",
    elb="app/fargo-demo-public/0123456789abcdef",
    client="127.0.0.1:40000",
    target="127.0.11.4:8080",
    request_processing_time=0.0,
    target_processing_time=0.010,
    response_processing_time=0.0,
    elb_status_code=200,
    target_status_code=200,
    received_bytes=0,
    sent_bytes=10,
    request="GET https://h:443/ HTTP/1.1",
    user_agent="t",
    ssl_cipher=None,
    ssl_protocol=None,
    target_group="backend-public",
    target_group_arn="arn",
    trace_id=None,
    domain_name=None,
    chosen_cert_arn=None,
    matched_rule_priority=1,
    request_creation_time=START.timestamp(),
    actions_executed="forward",
    conn_trace_id="TID_0",
)


def datapoints(metrics: RequestMetrics, before: datetime) -> dict[tuple[str, str, str], float]:
    """(metric, dimensions as text, statistic) → value, of every period closed."""
    return {
        (m.name, ",".join(v for _, v in m.dimensions), m.statistic): value
        for _, m, value in metrics.close_periods(before=before.timestamp())
    }


def test_requests_status_classes_and_response_time_percentiles_per_target_group() -> None:
    metrics = RequestMetrics(period_seconds=5, routes={"public": ["backend-public", "frontend"]})
    for number in range(1, 101):  # 100 answers of 1..100 ms, 3 of them 404 and 2 500
        status = 404 if number <= 3 else 500 if number <= 5 else 200
        entry = replace(
            ENTRY,
            time=START.timestamp() + 1,
            target_processing_time=number / 1000,
            target_status_code=status,
            elb_status_code=status,
        )
        metrics.record(entry)
    # the load balancer's own answers: no target (503), a redirect
    metrics.record(replace(ENTRY, target=None, target_status_code=None, elb_status_code=503))
    metrics.record(
        replace(ENTRY, target=None, target_status_code=None, elb_status_code=301, target_group=None)
    )
    points = datapoints(metrics, START + timedelta(seconds=5))
    group = "public,backend-public"
    assert points[("RequestCount", group, "Sum")] == 101
    assert points[("HTTPCode_Target_2XX_Count", group, "Sum")] == 95
    assert points[("HTTPCode_Target_4XX_Count", group, "Sum")] == 3
    assert points[("HTTPCode_Target_5XX_Count", group, "Sum")] == 2
    assert points[("TargetResponseTime", group, "p50")] == pytest.approx(0.050)
    assert points[("TargetResponseTime", group, "p95")] == pytest.approx(0.095)
    assert points[("TargetResponseTime", group, "p99")] == pytest.approx(0.099)
    assert points[("RequestCount", "public", "Sum")] == 102
    assert points[("HTTPCode_ELB_5XX_Count", "public", "Sum")] == 1
    assert points[("HTTPCode_ELB_3XX_Count", "public", "Sum")] == 1
    # an idle group gets zeros, not silence
    assert points[("RequestCount", "public,frontend", "Sum")] == 0
    assert ("TargetResponseTime", "public,frontend", "p99") not in points


def test_each_period_is_closed_once_and_a_late_entry_counts_in_the_next() -> None:
    metrics = RequestMetrics(period_seconds=5, routes={"public": ["backend-public"]})
    metrics.record(replace(ENTRY, time=START.timestamp() + 1))
    metrics.record(replace(ENTRY, time=START.timestamp() + 6))
    first = datapoints(metrics, START + timedelta(seconds=5))
    assert first[("RequestCount", "public", "Sum")] == 1
    assert datapoints(metrics, START + timedelta(seconds=5)) == {}
    metrics.record(replace(ENTRY, time=START.timestamp() + 2))  # read late
    second = datapoints(metrics, START + timedelta(seconds=10))
    assert second[("RequestCount", "public", "Sum")] == 2


def test_nearest_rank() -> None:
    assert nearest_rank([1.0], 99) == 1.0
    assert nearest_rank([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert nearest_rank([1.0, 2.0, 3.0, 4.0], 95) == 4.0


@pytest.fixture
def busy_process() -> Iterator[int]:
    process = subprocess.Popen(
        [sys.executable, "-c", "x = bytearray(64 << 20)\nwhile True: pass\n"]
    )
    try:
        yield process.pid
    finally:
        process.kill()
        process.wait()


def test_task_and_service_cpu_and_memory_from_the_processes_counters(busy_process: int) -> None:
    meter = TaskMeter(cluster="fargo-demo")
    task = MeteredTask("a" * 32, "backend-public", busy_process, cpu_units=1024, memory_mib=512)
    first = measured(meter, task, container_insights=True)
    assert ("CpuUtilized", "ECS/ContainerInsights") not in first  # one sample: no CPU yet
    time.sleep(0.5)
    points = measured(meter, task, container_insights=True)
    assert 5 < points[("CPUUtilization", "AWS/ECS")] <= 110  # a busy loop on 1 vCPU
    assert points[("CpuUtilized", "ECS/ContainerInsights")] == pytest.approx(
        points[("CPUUtilization", "AWS/ECS")] / 100 * 1024
    )
    assert points[("MemoryUtilized", "ECS/ContainerInsights")] > 64
    assert points[("MemoryUtilization", "AWS/ECS")] == pytest.approx(
        points[("MemoryUtilized", "ECS/ContainerInsights")] / 512 * 100
    )


def measured(
    meter: TaskMeter, task: MeteredTask, *, container_insights: bool
) -> dict[tuple[str, str], float]:
    """(metric name, namespace) → value of one measurement now."""
    points = meter.measure([task], now=time.monotonic(), container_insights=container_insights)
    return {(m.name, m.namespace): v for m, v in points}


def test_without_container_insights_only_the_services_metrics(busy_process: int) -> None:
    meter = TaskMeter(cluster="fargo-demo")
    task = MeteredTask("a" * 32, "backend-public", busy_process, cpu_units=1024, memory_mib=512)
    measured(meter, task, container_insights=False)
    time.sleep(0.5)
    points = measured(meter, task, container_insights=False)
    # AWS publishes ECS's per-service metrics always, the per-task ones only with Insights
    assert set(points) == {("CPUUtilization", "AWS/ECS"), ("MemoryUtilization", "AWS/ECS")}
    assert 5 < points[("CPUUtilization", "AWS/ECS")] <= 110
    # turned on (a spec applied to the running twin): the tasks' metrics, CPU at once
    on = measured(meter, task, container_insights=True)
    assert ("CpuUtilized", "ECS/ContainerInsights") in on
    assert on[("MemoryUtilized", "ECS/ContainerInsights")] > 64


def test_the_store_keeps_a_few_minutes_and_the_latest_for_status() -> None:
    store = MetricStore(period_seconds=5, keep_seconds=20)
    metric = Metric.of(
        "AWS/ApplicationELB", "RequestCount", {"LoadBalancer": "public"}, "Sum", "Count"
    )
    for second in range(0, 30, 5):
        store.put(metric, START + timedelta(seconds=second), float(second))
    now = START + timedelta(seconds=30)
    history = store.describe(now=now).metrics[0].datapoints
    assert [p.value for p in history] == [10.0, 15.0, 20.0, 25.0]  # 20 s of 5 s periods
    latest = store.describe(latest_only=True, now=now)
    assert latest.value("RequestCount", LoadBalancer="public") == 25.0
    # a metric that stopped (a stopped task's): no current value, then gone from history
    later = START + timedelta(seconds=42)
    assert store.describe(latest_only=True, now=later).metrics == []
    assert store.describe(now=later).metrics[0].datapoints[-1].value == 25.0
    assert store.describe(now=START + timedelta(seconds=46)).metrics == []
