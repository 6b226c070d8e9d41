"""`fargo up` in the foreground: prints the endpoints when ready; Ctrl-C stops everything."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from tests.e2e.conftest import all_gone, make_twin, up_in_foreground
from tests.waiting import wait_until

pytestmark = pytest.mark.slow  # starts a twin

HERE = Path(__file__).parent


def test_foreground_up_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    twin = make_twin(HERE / "second.yaml", tmp_path / "state")
    process, lines = up_in_foreground(twin)
    try:
        output = "".join(lines)
        # loopback mode: the load balancer's own address, 127.1.0.1 for the VPC 10.1.0.0/16
        published = f"https://127.1.0.1:{twin.publish[9443]}"
        assert "load balancer edge" in output and published in output, output
        started = twin.processes()
        assert len(started) >= 8  # control plane, caddy, 7 tasks
    finally:
        process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0
    wait_until(lambda: all_gone(started), timeout=10, what="every process gone")
    assert twin.processes() == []
