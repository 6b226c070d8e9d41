"""`fargo up` in the foreground: prints the endpoints when ready; Ctrl-C stops everything."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.e2e.conftest import Twin, all_gone, up_in_foreground, wait_for

HERE = Path(__file__).parent


def test_foreground_up_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    twin = Twin(HERE / "second.yaml", tmp_path / "state")
    process, lines = up_in_foreground(twin)
    output = "".join(lines)
    assert "load balancer edge" in output and "https://127.0.0.1:9443" in output, output
    started = twin.processes()
    assert len(started) >= 8  # control plane, caddy, 7 tasks
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0
    wait_for(lambda: all_gone(started), timeout=10, message="every process gone")
    assert twin.processes() == []
