"""The twin's CLI side: status rendering, error paths without tracebacks, `down`'s fallbacks."""

from __future__ import annotations

import argparse
import http.server
import os
import signal
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.cli import ROOT, run_fargo

from fargo.local.cli import commands, status_view
from fargo.local.control import stop as twin_stop
from fargo.local.elb.describe import describe_load_balancers, describe_target_group
from fargo.local.elb.target_health import Target, TargetHealthDescription, TargetState
from fargo.local.state import folder as state
from fargo.local.status import DataPlaneStatus, LoadBalancingStatus
from fargo.spec import load_spec

SECOND = ROOT / "tests" / "e2e" / "second.yaml"


def load_balancers_status() -> LoadBalancingStatus:
    spec = load_spec(SECOND)
    healthy = Target("t1", "127.1.10.4", 7000)
    unhealthy = Target("t2", "127.1.11.4", 7000)
    return LoadBalancingStatus(
        load_balancers=describe_load_balancers(
            spec, bind={"edge": "127.1.0.1"}, listener_port=lambda lb, port: port
        ),
        target_groups={
            "a": describe_target_group(
                spec.target_groups["a"],
                routable=[healthy.address],
                targets=[
                    TargetHealthDescription(healthy, TargetState.HEALTHY, None, None),
                    TargetHealthDescription(
                        unhealthy, TargetState.UNHEALTHY, "Target.ResponseCodeMismatch", None
                    ),
                ],
            ),
            "empty": describe_target_group(spec.target_groups["empty"], routable=[], targets=[]),
        },
        data_planes=[
            DataPlaneStatus(
                name="Caddy", load_balancers=["public"], pid=42, restarts=0, config_loads=1
            )
        ],
    )


def test_load_balancers_render_as_listeners_rules_and_targets() -> None:
    text = "\n".join(status_view.render_load_balancers(load_balancers_status()))
    assert "{" not in text.replace("#{", "")  # no raw JSON
    assert "listener HTTPS:9443 on https://127.1.0.1:9443" in text
    lines = text.splitlines()
    priorities = [line.split()[0] for line in lines if line.startswith("      ") and line.split()]
    rules = [p for p in priorities if p.isdigit()]
    assert rules == ["5", "10", "20", "30", "40", "50"]  # by priority
    assert any(
        "host-header admin.example.test" in line and "fixed-response 403" in line for line in lines
    )
    assert any("forward a (weight 1), b (weight 3)" in line for line in lines)
    assert any(line.split()[:1] == ["default"] and "redirect 302" in line for line in lines)
    target = next(line for line in lines if " t2 " in f" {line} ")
    assert "127.1.11.4:7000" in target and "unhealthy" in target
    assert "Target.ResponseCodeMismatch" in target
    assert "(no registered targets)" in text


def test_a_table_lines_up_its_columns() -> None:
    lines = status_view.table(["NAME", "COUNT"], [["a", 1], ["longer", 10]])
    assert lines == ["  NAME    COUNT", "  a           1", "  longer     10"]


class _Failing(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(500)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"boom\n")

    def address_string(self) -> str:
        return "unix"

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def failing_control_plane(tmp_path: Path) -> Iterator[Path]:
    state.prepare(tmp_path / "s")
    server = socketserver.UnixStreamServer(str(tmp_path / "s" / state.CONTROL_SOCKET), _Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield tmp_path / "s"
    finally:
        server.shutdown()
        server.server_close()


def test_status_reports_an_error_answer_as_such(
    failing_control_plane: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = argparse.Namespace(state_dir=failing_control_plane, json=False, json_schema=False)
    assert commands.status_command(args) == 1
    err = capsys.readouterr().err
    assert "answered with an error" in err and "500 boom" in err
    assert "not running" not in err


def test_status_without_a_control_plane_says_it_is_not_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = argparse.Namespace(state_dir=tmp_path, json=False, json_schema=False)
    assert commands.status_command(args) == 1
    assert "the twin is not running" in capsys.readouterr().err


def test_down_refuses_a_folder_that_is_not_a_state_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    assert commands.down_command(argparse.Namespace(state_dir=tmp_path)) == 1
    assert "not a fargo state folder" in capsys.readouterr().err
    assert os.listdir(tmp_path) == ["keep.txt"]


def test_stop_signals_a_control_plane_without_socket_at_once(tmp_path: Path) -> None:
    """A control plane still starting (no socket yet) is not waited for the full drain time."""
    folder = tmp_path / "s"
    state.prepare(folder)
    starting = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    state.record_process(folder, "control-plane", starting.pid, "control plane")
    record = state.control_plane(folder)
    assert record is not None
    started = time.monotonic()
    twin_stop.stop_twin(folder, record)
    # The point of the test, with a generous bound: it cannot be asked over a socket, so it
    # gets SIGTERM at once, not after the 15 s grace (nor the 60 s drain).
    assert time.monotonic() - started < twin_stop.SIGNAL_GRACE_SECONDS
    assert starting.wait(1) == -signal.SIGTERM
    assert state.recorded_processes(folder) == []


def test_up_with_a_state_folder_too_deep_for_a_socket_says_so(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 110)
    result = run_fargo("up", "--detach", "-f", str(ROOT / "fargo.yaml"), "--state-dir", str(deep))
    assert result.returncode == 1
    assert "shorter --state-dir" in result.stderr
    assert "Traceback" not in result.stderr
    assert not deep.exists()


def test_up_on_a_file_says_so_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    result = run_fargo(
        "up", "--detach", "-f", str(ROOT / "fargo.yaml"), "--state-dir", str(tmp_path / "file")
    )
    assert result.returncode == 1
    assert "not a folder" in result.stderr and "Traceback" not in result.stderr


def test_up_runs_a_spec_only_the_cloud_refuses_and_warns_first(tmp_path: Path) -> None:
    # No NAT gateway: `fargo validate` refuses it, the twin runs it (its private tasks then
    # fail to pull, as on AWS). The file as state folder stops `up` right after the warning.
    spec = tmp_path / "no-nat.yaml"
    spec.write_text((ROOT / "fargo.yaml").read_text().replace("nat_gateways: 1", "nat_gateways: 0"))
    (tmp_path / "file").write_text("")

    result = run_fargo("up", "--detach", "-f", str(spec), "--state-dir", str(tmp_path / "file"))

    [warning, *_] = result.stderr.splitlines()
    assert warning.startswith(f"{spec}:") and ": warning: network.nat_gateways: " in warning
    assert warning.endswith("fargo validate, synth and deploy refuse this; the twin runs it)")
    assert result.returncode == 1 and "not a folder" in result.stderr


def test_down_refuses_a_folder_others_may_write_and_signals_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "s"
    state.prepare(folder)
    process = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        state.record_process(folder, "control-plane", process.pid, "control plane")
        os.chmod(folder, 0o757)
        assert commands.down_command(argparse.Namespace(state_dir=folder)) == 1
        err = capsys.readouterr().err
        assert f"fargo down: the state folder {folder} is writable by others" in err
        assert f"chmod go-w {folder}" in err
        assert process.poll() is None
    finally:
        process.kill()
        process.wait()


def test_status_refuses_a_folder_others_may_write(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    state.prepare(folder)
    os.chmod(folder, 0o777)
    result = run_fargo("status", "--state-dir", str(folder))
    assert result.returncode == 1
    assert f"fargo status: the state folder {folder} is writable by group and others" in (
        result.stderr
    )


def test_up_detach_forks_before_it_loads_the_control_plane(tmp_path: Path) -> None:
    """What `fargo up --detach` loads before it forks is on the start's critical path:
    the control plane (its runtime, aiohttp) loads in the child, while the command builds
    the images on the other core. Loading it starts no thread: a rootless VPC enters its
    user namespace after, which only a single-threaded process may."""
    heavy = ("aiohttp", "fargo.local.runtime", "fargo.local.control.daemon", "botocore")
    code = (
        "import os, sys\n"
        "from fargo.local.control import detach\n"
        "def forked(config, log):\n"
        f"    print(sorted(m for m in {heavy!r} if m in sys.modules), flush=True)\n"
        "    import threading, fargo.local.control.daemon\n"  # what the child imports
        "    print(threading.active_count(), flush=True)\n"
        "    os._exit(0)\n"
        "detach.fork_detached = forked\n"
        "from fargo.cli import main\n"
        f"main(['up', '-d', '--network', 'loopback', '--state-dir', {str(tmp_path / 's')!r}])\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-2:] == ["[]", "1"]  # and no thread before the network mode
