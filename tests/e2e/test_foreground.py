"""`fargo up` in the foreground: prints the endpoints when ready, then streams the tasks'
lines, each prefixed by ``service/task``; Ctrl-C stops everything."""

from __future__ import annotations

import re
import signal
import ssl
import subprocess
import threading
from pathlib import Path

import httpx
import pytest
from tests.e2e.conftest import Twin, all_gone, make_twin, up_in_foreground
from tests.waiting import wait_until

from fargo.local.logs.streams import SHORT_TASK_ID

pytestmark = pytest.mark.slow  # starts a twin

HERE = Path(__file__).parent
# A request each service's echo task prints as `GET <path>` (second.yaml's rules /a/* and /b/?x).
PROBES = {"web-a": "/a/foreground-probe", "web-b": "/b/fx"}
# `<service>/<short task id> | <time> <message>` (plain: the output is a pipe).
TASK_LINE = re.compile(
    r"(?P<service>[a-z0-9-]+)/(?P<task>[0-9a-f]+) +\| \d\d:\d\d:\d\d\.\d{3} (?P<message>.*)"
)


def read_on(process: subprocess.Popen[str], lines: list[str]) -> threading.Thread:
    """Go on appending ``process``'s output to ``lines`` until it ends."""
    stdout = process.stdout
    assert stdout is not None

    def read() -> None:
        for line in stdout:
            lines.append(line)  # one at a time: the test reads the list meanwhile

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return reader


def probe_lines(lines: list[str]) -> dict[str, re.Match[str]]:
    """Service → the streamed line of its task that printed the service's probe request;
    empty until every probed service has one."""
    found = {}
    for line in list(lines):
        task_line = TASK_LINE.fullmatch(line.rstrip("\n"))
        if task_line and task_line["message"] == f"GET {PROBES.get(task_line['service'])}":
            found[task_line["service"]] = task_line
    return found if found.keys() == PROBES.keys() else {}


def assert_streams_task_lines(twin: Twin, published: str, lines: list[str]) -> None:
    """A request to each of two services: both tasks' lines come through the foreground
    `fargo up`'s own output, prefixed by their service and short task id, without colour."""
    with httpx.Client(verify=ssl.create_default_context(cafile=twin.ca), timeout=10) as http:
        for service, path in PROBES.items():
            assert http.get(published + path).json()["service"] == service
    streamed = wait_until(
        lambda: probe_lines(lines),
        timeout=20,
        what="a line of each probed service in `fargo up`'s output",
    )
    status = twin.status()
    for service, line in streamed.items():
        task_ids = [task.id[:SHORT_TASK_ID] for task in status.service(service).tasks]
        assert line["task"] in task_ids, (line[0], task_ids)
    assert not any("\033[" in line for line in lines), "colour escape codes in piped output"
    # The load balancer's health checks of /health (echo logs no user agent: known by the
    # path), several a second by now, are hidden; `fargo logs` has them.
    checks = [line for line in lines if (found := TASK_LINE.fullmatch(line.rstrip("\n")))
              and found["message"] == "GET /health"]  # fmt: skip
    assert checks == [], checks[:3]


def test_foreground_up_streams_task_lines_and_stops_everything_on_ctrl_c(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)  # plain because piped, not because of this
    twin = make_twin(HERE / "second.yaml", tmp_path / "state")
    process, lines = up_in_foreground(twin)
    reader = read_on(process, lines)
    try:
        output = "".join(lines)
        # loopback mode: the load balancer's own address, 127.1.0.1 for the VPC 10.1.0.0/16
        published = f"https://127.1.0.1:{twin.publish[9443]}"
        assert "load balancer edge" in output and published in output, output
        started = twin.processes()
        assert len(started) >= 8  # control plane, caddy, 7 tasks
        assert_streams_task_lines(twin, published, lines)
    finally:
        process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0
    reader.join(timeout=10)
    wait_until(lambda: all_gone(started), timeout=10, what="every process gone")
    assert twin.processes() == []
