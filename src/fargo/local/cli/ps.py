"""``fargo ps``: one line per task, with its process's CPU and memory.

    SERVICE          TASK          ADDRESS         AZ          STATE    HEALTH   UPTIME ...
    backend-private  3f9c1a2b7d4e  10.0.10.5:8090  us-east-1a  RUNNING  HEALTHY  4m12s  ...

and then CPU %, MEMORY and RESTARTS.

CPU % and memory are the task's process tree (its lead process and every descendant),
sampled over `SAMPLE_SECONDS` from the kernel's counters (psutil); 100 % is one core.
RESTARTS counts the service's tasks replaced since `fargo up` (a task on ECS is
replaced, never restarted).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from fargo.local.cli.status_view import table
from fargo.local.control.client import ControlClient, ControlError
from fargo.local.ecs.usage import TaskUsage
from fargo.local.state import folder as state
from fargo.local.status import TaskSummary, TwinStatus

SAMPLE_SECONDS = 0.3
SHORT_ID = 12
HEADERS = (
    "SERVICE",
    "TASK",
    "ADDRESS",
    "AZ",
    "STATE",
    "HEALTH",
    "UPTIME",
    "CPU %",
    "MEMORY",
    "RESTARTS",
)


@dataclass(frozen=True)
class Usage:
    cpu_percent: float
    rss_bytes: int


def ps_command(args: argparse.Namespace) -> int:
    client = ControlClient(state.control_socket(args.state_dir.resolve()))
    try:
        status = asyncio.run(client.status())
    except ControlError as err:
        print(f"fargo ps: {err}", file=sys.stderr)
        return 1
    tasks = [t for s in status.services for t in s.tasks if args.service in (None, s.name)]
    if args.service is not None and args.service not in {s.name for s in status.services}:
        known = ", ".join(s.name for s in status.services)
        print(f"fargo ps: no service {args.service!r} (the twin runs {known})", file=sys.stderr)
        return 1
    usage = sample_usage(t.pid for t in tasks if t.pid is not None)
    print("\n".join(render(status, tasks, usage, now=datetime.now(UTC))))
    return 0


def render(
    status: TwinStatus,
    tasks: Sequence[TaskSummary],
    usage: dict[int, Usage],
    *,
    now: datetime,
) -> list[str]:
    restarts = {s.name: s.restarts for s in status.services}
    rows = []
    for task in tasks:
        used = usage.get(task.pid) if task.pid is not None else None
        rows.append(
            [
                task.service,
                task.id[:SHORT_ID],
                task.address or "-",
                task.availability_zone or "-",
                task.last_status.value,
                task.health.value,
                _uptime(task, now),
                f"{used.cpu_percent:.1f}" if used else "-",
                _mebibytes(used.rss_bytes) if used else "-",
                restarts.get(task.service, 0),
            ]
        )
    return table(HEADERS, rows, indent="", empty="no tasks")


def sample_usage(pids: Iterable[int], seconds: float = SAMPLE_SECONDS) -> dict[int, Usage]:
    """Each lead process's tree: CPU % over ``seconds`` and resident memory now. A tree
    that cannot be read (gone, or another user's) is left out."""
    before = {pid: used for pid in pids if (used := TaskUsage.of(pid)) is not None}
    started = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    usage: dict[int, Usage] = {}
    for pid, then in before.items():
        now = TaskUsage.of(pid)
        if now is None:
            continue
        spent = now.cpu_seconds - then.cpu_seconds
        usage[pid] = Usage(cpu_percent=max(0.0, spent / elapsed * 100), rss_bytes=now.rss_bytes)
    return usage


def _uptime(task: TaskSummary, now: datetime) -> str:
    if task.started_at is None:
        return "-"
    seconds = int((now - task.started_at).total_seconds())
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def _mebibytes(size: int) -> str:
    return f"{size / 2**20:.0f} MiB"
