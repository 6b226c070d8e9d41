"""What a task's processes use, from the kernel's counters: CPU seconds and resident memory
of the task's whole process tree (its lead process and every descendant).

    used = TaskUsage.of(pid)      # None if the tree cannot be read (gone, another user's)
    used.cpu_seconds, used.rss_bytes

`fargo ps` samples it twice for a CPU %, Application Auto Scaling once a period for the
services' CPUUtilization and MemoryUtilization.
"""

from __future__ import annotations

from dataclasses import dataclass

import psutil

from fargo.local.pid_namespace import container_pid


@dataclass(frozen=True)
class TaskUsage:
    cpu_seconds: float  # user + system, since each process started
    rss_bytes: int

    @classmethod
    def of(cls, pid: int) -> TaskUsage | None:
        try:
            lead = psutil.Process(container_pid(pid))  # not the PID namespace's relay
            tree = [lead, *lead.children(recursive=True)]
        except psutil.Error:
            return None
        cpu, rss = 0.0, 0
        for process in tree:
            try:
                times = process.cpu_times()
                rss += process.memory_info().rss
            except psutil.Error:
                if process is lead:
                    return None
                continue  # a descendant that has just exited
            cpu += times.user + times.system
        return cls(cpu_seconds=cpu, rss_bytes=rss)
