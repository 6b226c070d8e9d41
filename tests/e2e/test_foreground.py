"""`fargo up` in the foreground: prints the endpoints when ready; Ctrl-C stops everything."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import ROOT, Twin, wait_for

HERE = Path(__file__).parent


def test_foreground_up_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    twin = Twin(HERE / "second.yaml", tmp_path / "state")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fargo.cli",
            "up",
            "-f",
            str(twin.spec),
            "--state-dir",
            str(twin.state_dir),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line)
        if "ready; Ctrl-C stops everything" in line:
            break
    output = "".join(lines)
    assert "load balancer edge" in output and "https://127.0.0.1:9443" in output, output
    started = twin.processes()
    assert len(started) >= 8  # control plane, caddy, 7 tasks
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0
    wait_for(
        lambda: not [p for p in started if p.is_running() and p.status() != "zombie"],
        timeout=10,
        message="every process gone",
    )
    assert twin.processes() == []
