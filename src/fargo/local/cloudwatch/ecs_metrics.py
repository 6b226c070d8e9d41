"""ECS metrics of each task and service, from the kernel's counters of the tasks' processes.

    meter = TaskMeter(cluster="fargo-demo")
    for metric, value in meter.measure(tasks, now=time.monotonic()): ...

Per service (AWS/ECS, dimensions ClusterName, ServiceName): CPUUtilization and
MemoryUtilization, the tasks' use over their reservation in percent (Average). Per
task (ECS/ContainerInsights, dimensions ClusterName, ServiceName, TaskId): CpuUtilized
(CPU units, 1024 a vCPU) and CpuReserved, MemoryUtilized and MemoryReserved
(megabytes), and the two utilizations in percent. CPU is measured between two
samples, so a task's first period has only its memory.
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
        self, tasks: Sequence[MeteredTask], *, now: float, services: Sequence[str] = ()
    ) -> Iterator[tuple[Metric, float]]:
        """The datapoints of ``tasks`` (running, with a process) and of ``services``."""
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
            yield _insight("MemoryUtilized", dims, "Megabytes"), memory_mb
            yield _insight("MemoryReserved", dims, "Megabytes"), float(task.memory_mib)
            yield _insight("MemoryUtilization", dims, "Percent"), memory_percent
            yield _insight("CpuReserved", dims, "None"), float(task.cpu_units)
            cpu_percent: float | None = None
            before = self._last.get(task.id)
            if before is not None and now > before[0]:
                vcpus_used = max(0.0, usage.cpu_seconds - before[1]) / (now - before[0])
                cpu_percent = vcpus_used * CPU_UNITS_PER_VCPU / task.cpu_units * 100
                yield _insight("CpuUtilized", dims, "None"), vcpus_used * CPU_UNITS_PER_VCPU
                yield _insight("CPUUtilization", dims, "Percent"), cpu_percent
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
