"""A task's container stats in the Docker stats shape, as the task metadata endpoint v4
serves them (``${ECS_CONTAINER_METADATA_URI_V4}/stats`` and ``/task/stats``).

    reader = ContainerStatsReader()
    reader.read(task)     # {"read": ..., "preread": ..., "cpu_stats": {...}, ...}

Filled from the kernel's counters of the task's process tree (its lead process and
every descendant, via psutil on /proc): ``cpu_stats.cpu_usage.total_usage`` (and its
kernel and user parts) in nanoseconds, ``system_cpu_usage`` (the machine's CPU time, in
nanoseconds, from /proc/stat), ``online_cpus``, ``memory_stats.usage`` (resident
memory), ``max_usage`` (the highest usage read), ``limit`` (the task's memory),
``blkio_stats`` (bytes read and written), ``pids_stats``, and in VPC mode
``networks`` (the counters of the interfaces of the task's network namespace,
`fargo.local.ecs.network_stats`) with ``network_rate_stats`` (bytes a second since the
previous read, as the ECS agent adds on Fargate). ``precpu_stats`` and ``preread`` are
the previous read's, as Docker's, so a consumer computes the CPU percentage from one
answer. The twin has no cgroup per task: ``throttling_data`` is zero. In loopback mode
a task shares this machine's network and its traffic is not counted apart: no
``networks``, as Docker's stats of a container on the host network.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psutil

from fargo.local.ecs.network_stats import NetworkStats, task_networks
from fargo.local.ecs.task import Task
from fargo.local.pid_namespace import container_pid

NANOSECONDS = 1_000_000_000
ZERO_TIME = "0001-01-01T00:00:00Z"  # Docker's preread before a first read


@dataclass(frozen=True)
class _CpuSample:
    read: datetime
    user_ns: int
    kernel_ns: int
    system_ns: int
    online_cpus: int

    @property
    def total_ns(self) -> int:
        return self.user_ns + self.kernel_ns


@dataclass(frozen=True)
class _Sample:
    cpu: _CpuSample
    memory_bytes: int
    read_bytes: int
    write_bytes: int
    processes: int
    networks: NetworkStats | None


@dataclass(frozen=True)
class _NetworkSample:
    read: datetime
    rx_bytes: int
    tx_bytes: int


def _sample(pid: int) -> _Sample | None:
    try:
        lead = psutil.Process(container_pid(pid))  # not the PID namespace's relay
        tree = [lead, *lead.children(recursive=True)]
    except psutil.Error:
        return None
    user = kernel = 0.0
    rss = read = written = 0
    for process in tree:
        try:
            with process.oneshot():
                times = process.cpu_times()
                rss += process.memory_info().rss
                io = _io_counters(process)
        except psutil.Error:
            if process is lead:
                return None
            continue  # a descendant that has just exited
        user += times.user + times.children_user
        kernel += times.system + times.children_system
        if io is not None:
            read += io.read_bytes
            written += io.write_bytes
    machine = psutil.cpu_times()
    system = sum(machine)  # every CPU's time in every state, as Docker's system_cpu_usage
    cpu = _CpuSample(
        read=datetime.now(UTC),
        user_ns=round(user * NANOSECONDS),
        kernel_ns=round(kernel * NANOSECONDS),
        system_ns=round(system * NANOSECONDS),
        online_cpus=len(os.sched_getaffinity(0)),
    )
    return _Sample(cpu, rss, read, written, len(tree), task_networks(pid))


class ContainerStatsReader:
    """Keeps each task's previous read (``precpu_stats``) and highest memory usage."""

    def __init__(self) -> None:
        self._previous: dict[str, _CpuSample] = {}
        self._max_memory: dict[str, int] = {}
        self._previous_network: dict[str, _NetworkSample] = {}

    def read(self, task: Task) -> dict[str, Any] | None:
        """The container's stats now; None if its process cannot be read (not running)."""
        sample = _sample(task.pid) if task.pid is not None else None
        if sample is None:
            return None
        previous = self._previous.get(task.id)
        self._previous[task.id] = sample.cpu
        peak = max(self._max_memory.get(task.id, 0), sample.memory_bytes)
        self._max_memory[task.id] = peak
        stats: dict[str, Any] = {
            "read": _iso(sample.cpu.read),
            "preread": _iso(previous.read) if previous else ZERO_TIME,
            "pids_stats": {"current": sample.processes},
            "blkio_stats": {
                "io_service_bytes_recursive": [
                    {"major": 0, "minor": 0, "op": "Read", "value": sample.read_bytes},
                    {"major": 0, "minor": 0, "op": "Write", "value": sample.write_bytes},
                ],
                "io_serviced_recursive": [],
            },
            "num_procs": 0,
            "storage_stats": {},
            "cpu_stats": _cpu_stats(sample.cpu),
            "precpu_stats": _cpu_stats(previous) if previous else _no_cpu_stats(),
            "memory_stats": {
                "usage": sample.memory_bytes,
                "max_usage": peak,
                "stats": {"rss": sample.memory_bytes},
                "limit": task.memory * 2**20,
            },
            "name": task.service,
            "id": task.id,
        }
        if sample.networks is not None:
            stats["networks"] = sample.networks
            rates = self._network_rates(task.id, sample.cpu.read, sample.networks)
            if rates is not None:
                stats["network_rate_stats"] = rates
        return stats

    def _network_rates(
        self, task_id: str, read: datetime, networks: NetworkStats
    ) -> dict[str, float] | None:
        """Bytes a second received and sent since the previous read (None the first time)."""
        now = _NetworkSample(
            read,
            sum(n["rx_bytes"] for n in networks.values()),
            sum(n["tx_bytes"] for n in networks.values()),
        )
        before = self._previous_network.get(task_id)
        self._previous_network[task_id] = now
        seconds = (now.read - before.read).total_seconds() if before else 0.0
        if before is None or seconds <= 0:
            return None
        return {
            "rx_bytes_per_sec": max(0, now.rx_bytes - before.rx_bytes) / seconds,
            "tx_bytes_per_sec": max(0, now.tx_bytes - before.tx_bytes) / seconds,
        }


def _cpu_stats(cpu: _CpuSample) -> dict[str, Any]:
    return {
        "cpu_usage": {
            "total_usage": cpu.total_ns,
            "usage_in_kernelmode": cpu.kernel_ns,
            "usage_in_usermode": cpu.user_ns,
        },
        "system_cpu_usage": cpu.system_ns,
        "online_cpus": cpu.online_cpus,
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    }


def _no_cpu_stats() -> dict[str, Any]:
    return {
        "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    }


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"  # Docker's nanoseconds


def _io_counters(process: psutil.Process) -> Any:
    """Its block I/O counters; None where there are none or they are not ours to read (a
    task of a subordinate uid owns its ``/proc/PID/io``, mode 0400: no block I/O then)."""
    if not hasattr(process, "io_counters"):
        return None
    try:
        return process.io_counters()
    except psutil.AccessDenied:
        return None
