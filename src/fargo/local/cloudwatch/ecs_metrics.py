"""ECS metrics of each task and service, from the kernel's counters of the tasks' processes.

    meter = TaskMeter(cluster="fargo-demo")
    for metric, value in meter.measure(tasks, now=time.monotonic(), container_insights=True):
        ...

Per service (AWS/ECS, dimensions ClusterName, ServiceName): CPUUtilization and
MemoryUtilization, the tasks' use over their reservation in percent (Average); ECS
publishes these for every service. Per task, only with Container Insights on (the
spec's ``cluster.container_insights``, as AWS publishes them only then;
ECS/ContainerInsights, dimensions ClusterName, ServiceName, TaskId): CpuUtilized (CPU
units, 1024 a vCPU) and CpuReserved, MemoryUtilized and MemoryReserved (megabytes), and
the two utilizations in percent. CPU is measured between two samples, so a task's
first period has only its memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from fargo.local.cloudwatch.store import Metric
from fargo.local.ecs.usage import TaskUsage

ECS = "AWS/ECS"
CONTAINER_INSIGHTS = "ECS/ContainerInsights"
CPU_UNITS_PER_VCPU = 1024


@dataclass(frozen=True)
class MeteredTask:
    id: str
    service: str
    pid: int
    cpu_units: int
    memory_mib: int


class TaskMeter:
    def __init__(self, *, cluster: str) -> None:
        self.cluster = cluster
        self._last: dict[str, tuple[float, float]] = {}  # task → (when, cpu seconds)

    def measure(
        self,
        tasks: Sequence[MeteredTask],
        *,
        now: float,
        container_insights: bool,
        services: Sequence[str] = (),
    ) -> Iterator[tuple[Metric, float]]:
        """The datapoints of ``services`` (and of the services of ``tasks``: running, with
        a process), and with ``container_insights`` those of each task."""
        seen: dict[str, tuple[float, float]] = {}
        per_service: dict[str, list[tuple[float | None, float]]] = {s: [] for s in services}
        for task in tasks:
            usage = TaskUsage.of(task.pid)
            if usage is None:
                continue
            seen[task.id] = (now, usage.cpu_seconds)
            dims = {"ClusterName": self.cluster, "ServiceName": task.service, "TaskId": task.id}
            memory_mb = usage.rss_bytes / 2**20
            memory_percent = memory_mb / task.memory_mib * 100
            insights = [
                (_insight("MemoryUtilized", dims, "Megabytes"), memory_mb),
                (_insight("MemoryReserved", dims, "Megabytes"), float(task.memory_mib)),
                (_insight("MemoryUtilization", dims, "Percent"), memory_percent),
                (_insight("CpuReserved", dims, "None"), float(task.cpu_units)),
            ]
            cpu_percent: float | None = None
            before = self._last.get(task.id)
            if before is not None and now > before[0]:
                vcpus_used = max(0.0, usage.cpu_seconds - before[1]) / (now - before[0])
                cpu_percent = vcpus_used * CPU_UNITS_PER_VCPU / task.cpu_units * 100
                insights.append(
                    (_insight("CpuUtilized", dims, "None"), vcpus_used * CPU_UNITS_PER_VCPU)
                )
                insights.append((_insight("CPUUtilization", dims, "Percent"), cpu_percent))
            if container_insights:
                yield from insights
            per_service.setdefault(task.service, []).append((cpu_percent, memory_percent))
        self._last = seen
        for service, points in per_service.items():
            dims = {"ClusterName": self.cluster, "ServiceName": service}
            cpus = [cpu for cpu, _ in points if cpu is not None]
            if cpus:
                yield _service("CPUUtilization", dims), sum(cpus) / len(cpus)
            if points:
                yield _service("MemoryUtilization", dims), sum(m for _, m in points) / len(points)


def _insight(name: str, dimensions: dict[str, str], unit: str) -> Metric:
    return Metric.of(CONTAINER_INSIGHTS, name, dimensions, "Average", unit)


def _service(name: str, dimensions: dict[str, str]) -> Metric:
    return Metric.of(ECS, name, dimensions, "Average", "Percent")
