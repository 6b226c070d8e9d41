"""A service's CPUUtilization and MemoryUtilization, as CloudWatch's AWS/ECS namespace has
them: what its tasks use over what they reserve, in percent.

    meter = ServiceMeter(cpu_units=256, memory_mib=512)
    meter.measure({task_id: pid, ...}, now=time.monotonic())   # None the first time
    # Datapoint(cpu=86.2, memory=8.7)

CPU is the CPU seconds the tasks' process trees spent since the last measurement over
the reserved vCPUs for that time, counting the tasks measured both times; memory the
tasks' resident memory now over their reservation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fargo.local.ecs.usage import TaskUsage

CPU_UNITS_PER_VCPU = 1024


@dataclass(frozen=True)
class Datapoint:
    cpu: float | None  # CPUUtilization, percent (None: no task measured twice yet)
    memory: float | None  # MemoryUtilization, percent


class ServiceMeter:
    def __init__(self, *, cpu_units: int, memory_mib: int) -> None:
        self.vcpus = cpu_units / CPU_UNITS_PER_VCPU
        self.memory_bytes = memory_mib * 2**20
        self._last: dict[str, tuple[float, float]] = {}  # task → (when, cpu seconds)

    def measure(self, tasks: Mapping[str, int], *, now: float) -> Datapoint:
        """``tasks``: each running task's id and lead pid."""
        used_cpu = reserved_cpu = 0.0
        rss = 0
        measured = 0
        seen: dict[str, tuple[float, float]] = {}
        for task_id, pid in tasks.items():
            usage = TaskUsage.of(pid)
            if usage is None:
                continue
            measured += 1
            rss += usage.rss_bytes
            seen[task_id] = (now, usage.cpu_seconds)
            before = self._last.get(task_id)
            if before is not None and now > before[0]:
                used_cpu += max(0.0, usage.cpu_seconds - before[1])
                reserved_cpu += self.vcpus * (now - before[0])
        self._last = seen
        cpu = used_cpu / reserved_cpu * 100 if reserved_cpu > 0 else None
        memory = rss / (self.memory_bytes * measured) * 100 if measured else None
        return Datapoint(cpu=cpu, memory=memory)
