"""`up` and `down` as a user meets them: failures, leftovers, bad input."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from tests.e2e.conftest import ROOT, Twin, all_gone, fargo, make_twin, up_in_foreground
from tests.waiting import wait_until

from fargo.local.state import folder as state

pytestmark = pytest.mark.slow  # starts twins, or `fargo up` in a subprocess

HERE = Path(__file__).parent


def up(twin: Twin, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    return fargo("up", "--detach", *twin.up_args(), check=check)


def test_down_after_the_control_plane_was_killed_leaves_no_process(tmp_path: Path) -> None:
    twin = make_twin(HERE / "second.yaml", tmp_path / "state")
    up(twin)
    started = twin.processes()
    assert len(started) >= 7  # control plane, caddy, 7 tasks
    control = next(p for p in started if p.pid == twin.status().pid)
    control.send_signal(signal.SIGKILL)
    control.wait(5)
    status = fargo("status", "--state-dir", str(twin.state_dir), check=False)
    assert status.returncode == 1
    said = status.stderr
    assert "the twin's control plane is not running: it stopped without `fargo down`" in said
    assert "caddy (load balancers) (pid" in said and "log router (pid" in said, said
    assert "2 tasks of web-a" in said and "`fargo down` stops them" in said, said
    result = fargo("down", "--state-dir", str(twin.state_dir))
    assert "stopped" in result.stdout
    wait_until(lambda: all_gone(started), timeout=10, what="every process gone")
    assert twin.processes() == []
    again = fargo("down", "--state-dir", str(twin.state_dir))  # idempotent
    assert "nothing is running" in again.stdout


def test_a_task_crashing_at_start_makes_detach_give_up_with_the_reason(tmp_path: Path) -> None:
    crash = make_twin(HERE / "crash.yaml", tmp_path / "s")
    result = up(crash, check=False)
    assert result.returncode == 1
    assert "exited with code 3" in result.stderr
    assert "database password missing" in result.stderr
    assert crash.processes() == []


def test_a_spec_error_stops_up_before_anything_starts(tmp_path: Path) -> None:
    bad = tmp_path / "fargo.yaml"
    bad.write_text(
        (ROOT / "fargo.yaml")
        .read_text()
        .replace("desired_count: 2", "desired_count: -1", 1)  # backend-private's
    )
    result = up(Twin(bad, tmp_path / "s"), check=False)  # nothing to publish: nothing starts
    assert result.returncode == 1
    assert f"{bad}:" in result.stderr and "desired_count" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "s").exists()


def test_a_port_in_use_is_named(tmp_path: Path) -> None:
    twin = make_twin(HERE / "second.yaml", tmp_path / "s")
    port = twin.publish[9443]
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.1.0.1", port))  # the load balancer's loopback address (VPC 10.1)
        holder.listen()
        result = up(twin, check=False)
    if result.returncode == 0:
        fargo("down", "--state-dir", str(twin.state_dir), check=False)
    assert result.returncode == 1
    assert f"port {port}" in result.stderr
    assert twin.processes() == []


def test_status_without_a_twin_says_so(tmp_path: Path) -> None:
    result = fargo("status", "--state-dir", str(tmp_path), check=False)
    assert result.returncode == 1 and "not running" in result.stderr
    assert os.listdir(tmp_path) == []


def test_two_concurrent_ups_on_one_state_folder_leave_exactly_one_twin(tmp_path: Path) -> None:
    twin = make_twin(HERE / "second.yaml", tmp_path / "state")
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: up(twin, check=False), range(2)))
    try:
        codes = sorted(r.returncode for r in results)
        assert codes == [0, 1], [r.stderr for r in results]
        loser = next(r for r in results if r.returncode == 1)
        # told the folder is taken, or (the winner took it sooner) that the twin is starting
        said = loser.stderr
        assert "already up" in said or "the twin is still starting" in said, said
        assert "Traceback" not in said
        # The winner keeps running, its files untouched by the loser.
        holder = state.lock_holder(twin.state_dir)
        assert holder is not None and twin.status().pid == holder
        assert (twin.state_dir / "control.sock").exists()
        assert state.control_plane(twin.state_dir) is not None
        assert all(s.healthy == s.desired for s in twin.status().services)
        # Once it runs, `fargo up` applies the spec to it (nothing changed) instead.
        again = up(twin, check=False)
        assert again.returncode == 0 and "no changes" in again.stdout, again.stderr
        assert state.lock_holder(twin.state_dir) == holder
    finally:
        fargo("down", "--state-dir", str(twin.state_dir))
    assert twin.processes() == []


def test_a_non_empty_folder_without_the_marker_is_refused_untouched(tmp_path: Path) -> None:
    (tmp_path / "project.txt").write_text("mine")
    os.chmod(tmp_path, 0o755)
    result = up(make_twin(HERE / "second.yaml", tmp_path), check=False)
    assert result.returncode == 1
    assert "not a fargo state folder" in result.stderr and "Traceback" not in result.stderr
    assert os.listdir(tmp_path) == ["project.txt"]
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755
    down = fargo("down", "--state-dir", str(tmp_path), check=False)
    assert down.returncode == 1 and os.listdir(tmp_path) == ["project.txt"]


def test_down_during_start_stops_everything_at_once(tmp_path: Path) -> None:
    never_healthy = tmp_path / "fargo.yaml"  # so `up --detach` is still waiting for health
    never_healthy.write_text(
        (HERE / "second.yaml")
        .read_text()
        .replace("context: echo", f"context: {HERE / 'echo'}")
        .replace("interval: 5, timeout: 2}", 'interval: 5, timeout: 2, matcher: "201"}', 1)
    )
    twin = make_twin(never_healthy, tmp_path / "state")
    starting = subprocess.Popen(
        [sys.executable, "-m", "fargo.cli", "up", "--detach", *twin.up_args()],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: state.locked(twin.state_dir), timeout=30, what="the daemon started")
        began = time.monotonic()
        result = fargo("down", "--state-dir", str(twin.state_dir))
        # The point of the test, with a generous bound: `down` does not wait out the 60 s
        # drain of a twin still starting (nor `up --detach`'s health wait).
        assert time.monotonic() - began < 20, result.stdout
        assert "stopped" in result.stdout
        _, err = starting.communicate(timeout=30)
        assert starting.returncode == 1 and "Traceback" not in err
    finally:
        if starting.poll() is None:
            starting.kill()
    wait_until(lambda: twin.processes() == [], timeout=10, what="every process gone")
    assert not state.locked(twin.state_dir)


def test_a_second_ctrl_c_while_stopping_still_stops_everything(tmp_path: Path) -> None:
    twin = make_twin(HERE / "second.yaml", tmp_path / "state")
    process, lines = up_in_foreground(twin)
    assert process.stdout is not None
    try:
        started = twin.processes()
        assert len(started) >= 8, "".join(lines)
        process.send_signal(signal.SIGINT)
        for line in process.stdout:
            lines.append(line)
            if line.rstrip().endswith(" stopping"):
                break
        process.send_signal(signal.SIGINT)  # impatient: while the tasks are being stopped
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    output = "".join(lines) + rest
    assert process.returncode == 0, output
    assert "SIGINT again" in output and "Traceback" not in output
    wait_until(lambda: all_gone(started), timeout=10, what="every process gone")
    assert twin.processes() == [] and state.recorded_processes(twin.state_dir) == []
