"""``fargo ps``: a real process tree's CPU and memory, and the table it prints."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psutil
import pytest
from tests.waiting import wait_until

from fargo.local.cli.ps import HEADERS, Usage, render, sample_usage
from fargo.local.status import ServiceStatus, TaskSummary, TwinStatus

BURN = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'while True: pass'])"


@pytest.fixture
def busy_tree() -> Iterator[int]:
    """A lead process that only waits, and a child that spins one core."""
    lead = subprocess.Popen([sys.executable, "-c", BURN])
    tree = psutil.Process(lead.pid)
    try:
        wait_until(lambda: tree.children(), timeout=10)
        yield lead.pid
    finally:
        for child in tree.children(recursive=True):
            child.kill()
        lead.kill()
        lead.wait()


def test_usage_counts_the_whole_process_tree(busy_tree: int) -> None:
    usage = sample_usage([busy_tree], seconds=0.5)[busy_tree]
    assert (
        usage.cpu_percent > 10
    )  # the spinning child (the lead only waits); a busy machine shares the core
    assert usage.rss_bytes > 5 * 2**20  # two interpreters


def test_a_process_that_is_gone_is_left_out() -> None:
    done = subprocess.run([sys.executable, "-c", "pass"], check=True)
    assert done.returncode == 0
    assert sample_usage([2**22 + 7], seconds=0.01) == {}  # above pid_max: never a process


def test_the_table_has_a_line_per_task_with_uptime_and_the_services_restarts() -> None:
    now = datetime(2026, 12, 3, 4, 0, tzinfo=UTC)
    task = {
        "id": "3f9c1a2b7d4e" + "0" * 20,
        "service": "backend-private",
        "address": "10.0.10.5:8090",
        "availability_zone": "us-east-1a",
        "last_status": "RUNNING",
        "desired_status": "RUNNING",
        "health": "HEALTHY",
        "pid": 4242,
        "started_at": (now - timedelta(minutes=4, seconds=12)).isoformat(),
        "stopped_at": None,
        "exit_code": None,
        "stopped_reason": None,
        "log": "/tmp/x.log",
    }
    status = TwinStatus.model_construct(services=[_service(restarts=2)])
    rows = render(
        status,
        [TaskSummary.model_validate(task)],
        {4242: Usage(cpu_percent=12.34, rss_bytes=44 * 2**20)},
        now=now,
    )
    assert rows[0].split() == [h for header in HEADERS for h in header.split()]
    assert rows[1].split() == [
        "backend-private",
        "3f9c1a2b7d4e",
        "10.0.10.5:8090",
        "us-east-1a",
        "RUNNING",
        "HEALTHY",
        "4m12s",
        "12.3",
        "44",
        "MiB",
        "2",
    ]


def _service(restarts: int) -> ServiceStatus:
    return ServiceStatus.model_construct(name="backend-private", restarts=restarts)
