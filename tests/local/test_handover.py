"""Which crashed run a new control plane takes over, and what it sets aside (real
processes stand for the crashed run's Caddy, DNS processes and tasks)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from fargo.local.control.handover import PREFIX, PreviousRun
from fargo.local.state import folder as state

# How `CaddyProcess`, `DnsProcess` and tasks describe their processes.
WHAT = {
    "caddy": "caddy (load balancers)",
    "caddy-public": "caddy-public (load balancers)",
    "caddy-internal": "caddy-internal (load balancers)",
    "caddy-targets": "target lookups of caddy",
    "caddy-public-targets": "target lookups of caddy-public",
    "caddy-internal-targets": "target lookups of caddy-internal",
    "dns-discovery": "discovery DNS server",
    "task-t1": "task t1 of web",
}


def sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )


@contextlib.contextmanager
def running(folder: Path, names: list[str]) -> Iterator[None]:
    """A sleeper recorded under each name in the state ``folder``, killed at the end."""
    state.prepare(folder)
    processes = {name: sleeper() for name in names}
    try:
        for name, process in processes.items():
            state.record_process(folder, name, process.pid, WHAT.get(name, name))
        yield
    finally:
        for process in processes.values():
            process.kill()
            process.wait()


@pytest.fixture
def crashed(tmp_path: Path) -> Iterator[Path]:
    """A state folder a killed control plane left: Caddy, both DNS processes, a task, the
    log router running; the control plane's record dead."""
    folder = tmp_path / "s"
    with running(folder, ["caddy", "caddy-targets", "dns-discovery", "task-t1", "log-router"]):
        dead = subprocess.Popen(["true"])
        dead.wait()
        state.record_process(folder, "control-plane", dead.pid, "control plane")
        (folder / "caddy").mkdir()
        (folder / "caddy" / "targets.address").write_text("udp/127.0.0.1:5353\n")
        (folder / "caddy" / "unavailable.sock").write_text("")
        (folder / "dns").mkdir()
        (folder / "dns" / "discovery.address").write_text("127.0.0.2:8053\n")
        yield folder


@pytest.fixture
def crashed_vpc(tmp_path: Path) -> Iterator[Path]:
    """A state folder a killed VPC-mode control plane left: a Caddy per load balancer with
    its lookup process, discovery, a task, the log router running."""
    folder = tmp_path / "v"
    caddys = ["caddy-public", "caddy-public-targets", "caddy-internal", "caddy-internal-targets"]
    with running(folder, [*caddys, "dns-discovery", "task-t1", "log-router"]):
        for caddy in ("caddy-public", "caddy-internal"):
            (folder / caddy).mkdir()
            (folder / caddy / "handover.sock").write_text("")
            (folder / caddy / "admin.sock").write_text("")
        (folder / "dns").mkdir()
        (folder / "dns" / "discovery.json").write_text("{}")
        yield folder


def names(folder: Path) -> set[str]:
    """The records, but the dead control plane's (the new one records itself over it)."""
    return {r.path.stem for r in state.recorded_processes(folder)} - {"control-plane"}


def test_a_complete_loopback_data_plane_is_taken_over(crashed: Path) -> None:
    previous = PreviousRun.find(crashed, "loopback")
    assert previous is not None
    described = " ".join(previous.describe())
    assert "1 task" in previous.describe() and "caddy (load balancers) (pid" in described
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


def test_missing_addresses_and_a_loopback_run_in_vpc_mode_are_not_taken_over(
    crashed: Path,
) -> None:
    assert PreviousRun.find(crashed, "vpc") is None  # no caddy-<name> with its listeners
    (crashed / "dns" / "discovery.address").unlink()
    assert PreviousRun.find(crashed, "loopback") is None


def test_a_vpc_run_sets_aside_every_record_and_its_caddys_and_dns_folders(
    crashed_vpc: Path,
) -> None:
    assert PreviousRun.find(crashed_vpc, "loopback") is None
    previous = PreviousRun.find(crashed_vpc, "vpc")
    assert previous is not None
    previous.set_aside()
    # The new run makes its own VPC: nothing is adopted under its own name.
    assert all(name.startswith(PREFIX) for name in names(crashed_vpc)), names(crashed_vpc)
    assert f"{PREFIX}dns-discovery" in names(crashed_vpc)
    assert previous.caddy_folders == {
        "caddy-public": crashed_vpc / f"{PREFIX}caddy-public",
        "caddy-internal": crashed_vpc / f"{PREFIX}caddy-internal",
    }
    assert (crashed_vpc / f"{PREFIX}caddy-public" / "handover.sock").exists()
    assert (crashed_vpc / f"{PREFIX}dns" / "discovery.json").exists()
    assert not (crashed_vpc / "caddy-public").exists() and not (crashed_vpc / "dns").exists()


def test_a_vpc_run_that_crashed_while_taking_another_over_is_stopped_instead(
    crashed_vpc: Path,
) -> None:
    """Its Caddys may stand by on the socket a new take-over would steer connections to."""
    older = sleeper()
    try:
        state.record_process(crashed_vpc, f"{PREFIX}caddy-public", older.pid, WHAT["caddy-public"])
        assert PreviousRun.find(crashed_vpc, "vpc") is None
    finally:
        older.kill()
        older.wait()


def test_set_aside_folders_a_crashed_run_left_do_not_collide_and_are_removed(
    crashed_vpc: Path,
) -> None:
    (crashed_vpc / f"{PREFIX}dns").mkdir()  # an earlier take-over's, its processes gone
    previous = PreviousRun.find(crashed_vpc, "vpc")
    assert previous is not None
    previous.set_aside()
    assert (crashed_vpc / f"{PREFIX}dns-2" / "discovery.json").exists()
    state.remove_set_aside(crashed_vpc)
    assert not [p for p in crashed_vpc.iterdir() if p.is_dir() and p.name.startswith(PREFIX)]
    assert (crashed_vpc / "pids").is_dir()  # the rest of the folder stays


@pytest.mark.parametrize("missing", ["targets process", "handover socket"])
def test_a_vpc_caddy_without_its_listeners_keeper_is_not_taken_over(
    crashed_vpc: Path, missing: str
) -> None:
    for caddy in ("caddy-public", "caddy-internal"):
        if missing == "handover socket":
            (crashed_vpc / caddy / "handover.sock").unlink()
            continue
        pid = next(
            r.pid
            for r in state.recorded_processes(crashed_vpc)
            if r.path.stem == f"{caddy}-targets"
        )
        psutil.Process(pid).kill()
        psutil.Process(pid).wait(5)
    assert PreviousRun.find(crashed_vpc, "vpc") is None


async def test_retire_in_vpc_mode_stops_the_old_caddys_then_everything_and_its_folders(
    crashed_vpc: Path,
) -> None:
    previous = PreviousRun.find(crashed_vpc, "vpc")
    assert previous is not None
    previous.set_aside()
    (crashed_vpc / "caddy-public").mkdir()  # the new run's Caddy, whose sockets stay
    (crashed_vpc / "caddy-public" / "admin.sock").write_text("")
    taken: list[bool] = []

    async def take_over() -> None:
        taken.append(True)

    stopped: list[str] = []
    for record in state.recorded_processes(crashed_vpc):
        if record.what.endswith("(load balancers)"):
            watch = psutil.Process(record.pid)
            asyncio.get_running_loop().run_in_executor(
                None, lambda p=watch, w=record.what: (p.wait(10), stopped.append(w))
            )
    await previous.retire(take_over, linger_seconds=0.0, first=["caddy-public"])
    assert taken == [True]
    await asyncio.sleep(0.2)
    # the one whose listeners were taken over first: the internal one answers the old
    # tasks' calls while the public one finishes what it was answering
    assert stopped == [WHAT["caddy-public"], WHAT["caddy-internal"]]
    assert not {f"{PREFIX}caddy-public", f"{PREFIX}caddy-internal"} & names(crashed_vpc)
    await asyncio.sleep(1.0)
    assert names(crashed_vpc) == set()
    assert sorted(p.name for p in crashed_vpc.iterdir() if p.name.startswith(PREFIX)) == []
    assert (crashed_vpc / "caddy-public" / "admin.sock").exists()
    await previous.stop()


async def test_retire_publishes_then_stops_the_old_caddy_and_later_the_old_tasks(
    crashed: Path,
) -> None:
    previous = PreviousRun.find(crashed, "loopback")
    assert previous is not None
    previous.set_aside()
    released: list[bool] = []

    async def release() -> None:
        released.append(True)

    await previous.retire(release, linger_seconds=0.2)
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
