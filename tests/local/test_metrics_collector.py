"""The metrics collector of a twin's cluster of real processes: its period is
CloudWatch's minute on the twin's clock, and Container Insights' per-task metrics follow
the spec's ``cluster.container_insights`` (read each period, as a spec applied to a
running twin changes it)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.local.conftest import caddy_elb
from tests.local.test_ecs import Harness, HarnessFactory, make_harness_fixture  # noqa: F401

from fargo.local.clock import TwinClock
from fargo.local.cloudwatch.collector import MetricsCollector
from fargo.local.cloudwatch.ecs_metrics import CONTAINER_INSIGHTS, ECS
from fargo.local.ecs.task import TaskStatus
from fargo.local.status import MetricsStatus
from fargo.spec.model import Spec

TIME_SCALE = 0.01  # a 60 s period is 0.6 s


def namespaces(status: MetricsStatus) -> set[str]:
    return {m.namespace for m in status.metrics if m.datapoints}


async def collect_twice(collector: MetricsCollector) -> None:
    """Two periods: CPU is measured between two samples."""
    for _ in range(2):
        await collector.collect()
        await asyncio.sleep(collector.period_seconds)


async def test_the_period_follows_the_clock_and_insights_follow_the_spec(
    make_harness: HarnessFactory, tmp_path: Path
) -> None:
    h: Harness = await make_harness("desired_count: 1", time_scale=TIME_SCALE)
    await h.cluster.start()
    await h.until(lambda: [t.last_status for t in h.scheduler.active()] == [TaskStatus.RUNNING])
    off = h.cluster.spec.model_copy(deep=True)
    off.cluster.container_insights = False
    spec: list[Spec] = [off]
    elb = caddy_elb(
        off,
        state_dir=tmp_path / "state",
        bind={},
        listener_port=lambda lb, port: port,
        certificate=None,
        time_scale=TIME_SCALE,
    )
    collector = MetricsCollector(
        spec=lambda: spec[0], cluster=h.cluster, elb=elb, clock=TwinClock(TIME_SCALE)
    )
    assert collector.period_seconds == 0.6
    await collect_twice(collector)
    described = collector.describe()
    assert described.period_seconds == 0.6 and not described.container_insights
    assert namespaces(described) == {ECS}  # the service's CPU and memory, no task's
    assert described.value("CPUUtilization", ClusterName="test", ServiceName="app") is not None

    spec[0] = h.cluster.spec  # container_insights: true (the default)
    await collect_twice(collector)
    described = collector.describe()
    assert described.container_insights and namespaces(described) == {ECS, CONTAINER_INSIGHTS}
    task = h.scheduler.active()[0].id
    dims = {"ClusterName": "test", "ServiceName": "app", "TaskId": task}
    assert described.value("MemoryUtilized", **dims) is not None
