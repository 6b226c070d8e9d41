"""`up` and `down` as a user meets them: failures, leftovers, bad input."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import psutil
from tests.e2e.conftest import ROOT, Twin, fargo, wait_for

HERE = Path(__file__).parent


def up(spec: Path, state_dir: Path, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    return fargo("up", "--detach", "-f", str(spec), "--state-dir", str(state_dir), check=check)


def test_down_after_the_control_plane_was_killed_leaves_no_process(tmp_path: Path) -> None:
    twin = Twin(HERE / "second.yaml", tmp_path / "state")
    up(twin.spec, twin.state_dir)
    started = twin.processes()
    assert len(started) >= 7  # control plane, caddy, 7 tasks
    control = next(p for p in started if "fargo.local.daemon" in " ".join(p.cmdline()))
    control.send_signal(signal.SIGKILL)
    control.wait(5)
    result = fargo("down", "--state-dir", str(twin.state_dir))
    assert "stopped" in result.stdout
    wait_for(
        lambda: not [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE],
        timeout=10,
        message="every process gone",
    )
    assert twin.processes() == []
    again = fargo("down", "--state-dir", str(twin.state_dir))  # idempotent
    assert "nothing is running" in again.stdout


def test_a_task_crashing_at_start_makes_detach_give_up_with_the_reason(tmp_path: Path) -> None:
    result = up(HERE / "crash.yaml", tmp_path / "s", check=False)
    assert result.returncode == 1
    assert "exited with code 3" in result.stderr
    assert "database password missing" in result.stderr
    assert Twin(HERE / "crash.yaml", tmp_path / "s").processes() == []


def test_a_spec_error_stops_up_before_anything_starts(tmp_path: Path) -> None:
    bad = tmp_path / "fargo.yaml"
    bad.write_text(
        (ROOT / "fargo.yaml")
        .read_text()
        .replace("desired_count: 2\n    discovery", "desired_count: -1\n    discovery")
    )
    result = up(bad, tmp_path / "s", check=False)
    assert result.returncode == 1
    assert f"{bad}:" in result.stderr and "desired_count" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "s").exists()


def test_a_port_in_use_is_named(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", 9443))
        holder.listen()
        result = up(HERE / "second.yaml", tmp_path / "s", check=False)
    assert result.returncode == 1
    assert "port 9443" in result.stderr
    assert Twin(HERE / "second.yaml", tmp_path / "s").processes() == []


def test_status_without_a_twin_says_so(tmp_path: Path) -> None:
    result = fargo("status", "--state-dir", str(tmp_path), check=False)
    assert result.returncode == 1 and "not running" in result.stderr
    assert os.listdir(tmp_path) == []
