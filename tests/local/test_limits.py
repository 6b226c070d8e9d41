"""Open-file limits of what the twin starts: Caddy at the kernel's ceiling (as root) or the
hard limit, tasks at Fargate's."""

from __future__ import annotations

import resource
from collections.abc import Iterator
from pathlib import Path

import pytest

from fargo.local.caddy.process import CaddyProcess
from fargo.local.ecs.process import spawn_task
from fargo.local.limits import FARGATE_NOFILE
from fargo.local.state import folder as state

LOW_SOFT_LIMIT = 256
CAP_SYS_RESOURCE = 24


def open_files(pid: int) -> tuple[int, int]:
    """The process's soft and hard open-file limits, as the kernel reports them."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError(f"no open-file limit in /proc/{pid}/limits")


@pytest.fixture
def low_soft_limit() -> Iterator[int]:
    """This process (and so what it starts) at a low soft limit; the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= LOW_SOFT_LIMIT:
        pytest.skip(f"the hard open-file limit ({hard}) leaves nothing to raise")
    resource.setrlimit(resource.RLIMIT_NOFILE, (LOW_SOFT_LIMIT, hard))
    try:
        yield hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def may_raise_hard_limits() -> bool:
    """Whether this process has ``CAP_SYS_RESOURCE`` (root, unless a sandbox took it away),
    which may raise a hard limit."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> CAP_SYS_RESOURCE & 1)
    return False


def caddy_open_files(hard: int) -> int:
    """Caddy's soft and hard limit, started by a process whose hard limit is ``hard``."""
    return int(Path("/proc/sys/fs/nr_open").read_text()) if may_raise_hard_limits() else hard


async def test_caddy_runs_at_the_highest_open_file_limit_it_may_have(
    state_dir: Path, low_soft_limit: int
) -> None:
    state.prepare(state_dir)
    caddy = CaddyProcess(state_dir)
    try:
        await caddy.start()
        assert caddy.pid is not None
        assert open_files(caddy.pid) == (caddy_open_files(low_soft_limit),) * 2
    finally:
        await caddy.stop()


async def test_a_task_gets_fargates_open_file_limit_raised_or_as_far_as_the_hard_limit_allows(
    tmp_path: Path, low_soft_limit: int
) -> None:
    with (tmp_path / "task.log").open("wb") as log:
        process = await spawn_task(["sleep", "60"], env={}, cwd=tmp_path, log=log)
    try:
        expected = (
            FARGATE_NOFILE if may_raise_hard_limits() else min(FARGATE_NOFILE, low_soft_limit)
        )
        assert open_files(process.pid) == (expected, expected)
    finally:
        process.kill()
        await process.wait()
