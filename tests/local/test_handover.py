"""Which crashed run a new control plane takes over, and what it sets aside (real
processes stand for the crashed run's Caddy, DNS processes and tasks)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from fargo.local.control.handover import PREFIX, PreviousRun
from fargo.local.state import folder as state


def sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )


@pytest.fixture
def crashed(tmp_path: Path) -> Iterator[Path]:
    """A state folder a killed control plane left: Caddy, both DNS processes, a task, the
    log router running; the control plane's record dead."""
    folder = tmp_path / "s"
    state.prepare(folder)
    processes = {name: sleeper() for name in ("caddy", "caddy-targets", "dns-discovery")}
    processes["task-t1"] = sleeper()
    processes["log-router"] = sleeper()
    for name, process in processes.items():
        what = "task of web" if name.startswith("task-") else name
        state.record_process(folder, name, process.pid, what.replace("task of", "task t1 of"))
    dead = subprocess.Popen(["true"])
    dead.wait()
    state.record_process(folder, "control-plane", dead.pid, "control plane")
    (folder / "caddy").mkdir()
    (folder / "caddy" / "targets.address").write_text("udp/127.0.0.1:5353\n")
    (folder / "caddy" / "unavailable.sock").write_text("")
    (folder / "dns").mkdir()
    (folder / "dns" / "discovery.address").write_text("127.0.0.2:8053\n")
    try:
        yield folder
    finally:
        for process in processes.values():
            process.kill()
            process.wait()


def names(folder: Path) -> set[str]:
    """The records, but the dead control plane's (the new one records itself over it)."""
    return {r.path.stem for r in state.recorded_processes(folder)} - {"control-plane"}


def test_a_complete_loopback_data_plane_is_taken_over(crashed: Path) -> None:
    previous = PreviousRun.find(crashed, "loopback")
    assert previous is not None
    assert "1 task" in previous.describe() and "caddy (pid" in " ".join(previous.describe())
    previous.set_aside()
    assert names(crashed) == {
        "caddy-targets",  # adopted under their own names
        "dns-discovery",
        f"{PREFIX}caddy",  # replaced once the new twin is ready
        f"{PREFIX}task-t1",
        f"{PREFIX}log-router",
    }
    assert (crashed / "caddy" / f"{PREFIX}unavailable.sock").exists()
    assert not (crashed / "caddy" / "unavailable.sock").exists()


@pytest.mark.parametrize("missing", ["caddy", "caddy-targets", "dns-discovery"])
def test_an_incomplete_data_plane_is_not_taken_over(crashed: Path, missing: str) -> None:
    pid = next(r.pid for r in state.recorded_processes(crashed) if r.path.stem == missing)
    psutil.Process(pid).kill()
    psutil.Process(pid).wait(5)
    assert PreviousRun.find(crashed, "loopback") is None


def test_vpc_mode_and_missing_addresses_are_not_taken_over(crashed: Path) -> None:
    assert PreviousRun.find(crashed, "vpc") is None  # a new control plane makes a new VPC
    (crashed / "dns" / "discovery.address").unlink()
    assert PreviousRun.find(crashed, "loopback") is None


async def test_retire_publishes_then_stops_the_old_caddy_and_later_the_old_tasks(
    crashed: Path,
) -> None:
    previous = PreviousRun.find(crashed, "loopback")
    assert previous is not None
    previous.set_aside()
    released: list[bool] = []
    await previous.retire(lambda: released.append(True), linger_seconds=0.2)
    assert released == [True]
    assert f"{PREFIX}caddy" not in names(crashed)  # stopped at once (SIGTERM)
    assert f"{PREFIX}task-t1" in names(crashed)  # a client may still have its address
    await asyncio.sleep(1.0)
    assert names(crashed) == {"caddy-targets", "dns-discovery"}
    await previous.stop()


def test_a_run_that_crashed_while_taking_another_over_keeps_both_records(crashed: Path) -> None:
    older = sleeper()
    try:
        state.record_process(crashed, f"{PREFIX}caddy", older.pid, "caddy (load balancers)")
        previous = PreviousRun.find(crashed, "loopback")
        assert previous is not None
        previous.set_aside()
        assert {f"{PREFIX}caddy", f"{PREFIX}caddy-2"} <= names(crashed)
    finally:
        older.kill()
        older.wait()
