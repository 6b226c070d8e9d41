"""The twin's state folder (``.fargo/`` by default) and the processes recorded in it.

    .fargo/control.sock        control plane API (unix socket, owner only)
    .fargo/pids/*.json         every process the twin started: control plane, Caddy, tasks
    .fargo/logs/               control-plane.log, caddy.log, <service>/<task-id>.log
    .fargo/ca/, certs/         the local CA and the listener certificate
    .fargo/registry/           pushed images
    .fargo/caddy/              generated proxy config, Caddy's admin socket

`sweep` stops every recorded process that still runs — what `fargo down` does
when the control plane itself is gone (killed with SIGKILL, say).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

CONTROL_SOCKET = "control.sock"
PID_DIRECTORY = "pids"
CONTROL_PLANE_RECORD = "control-plane.json"


def prepare(state_dir: Path) -> None:
    """Create the folder, readable by its owner only."""
    state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(state_dir, 0o700)
    for sub in ("logs", PID_DIRECTORY):
        (state_dir / sub).mkdir(exist_ok=True)


def control_socket(state_dir: Path) -> Path:
    return state_dir / CONTROL_SOCKET


@dataclass(frozen=True)
class ProcessRecord:
    """A process the twin started; ``created`` guards against a reused pid."""

    path: Path
    pid: int
    created: float
    what: str

    def alive(self) -> bool:
        try:
            process = psutil.Process(self.pid)
            same = abs(process.create_time() - self.created) < 1.0
            return same and process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False


def record_process(state_dir: Path, name: str, pid: int, what: str) -> Path:
    """Write ``pids/<name>.json`` for a process the twin started."""
    try:
        created = psutil.Process(pid).create_time()
    except psutil.Error:
        created = time.time()
    path = state_dir / PID_DIRECTORY / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pid": pid, "created": created, "what": what}))
    return path


def forget_process(state_dir: Path, name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        (state_dir / PID_DIRECTORY / f"{name}.json").unlink()


def recorded_processes(state_dir: Path) -> list[ProcessRecord]:
    records = []
    for path in sorted((state_dir / PID_DIRECTORY).glob("*.json")):
        try:
            data = json.loads(path.read_text())
            records.append(
                ProcessRecord(path, int(data["pid"]), float(data["created"]), str(data["what"]))
            )
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)
    return records


def control_plane(state_dir: Path) -> ProcessRecord | None:
    """The running control plane of this state folder, if any."""
    for record in recorded_processes(state_dir):
        if record.path.name == CONTROL_PLANE_RECORD and record.alive():
            return record
    return None


def sweep(state_dir: Path, grace: float = 5.0) -> list[str]:
    """Stop every recorded process still running (its whole process group); forget the rest."""
    stopped: list[str] = []
    live: list[ProcessRecord] = []
    for record in recorded_processes(state_dir):
        if record.alive():
            live.append(record)
            _signal(record.pid, signal.SIGTERM)
        else:
            record.path.unlink(missing_ok=True)
    deadline = time.monotonic() + grace
    while live and time.monotonic() < deadline:
        live = [r for r in live if r.alive() or _forget(r, stopped)]
        if live:
            time.sleep(0.05)
    for record in live:
        _signal(record.pid, signal.SIGKILL)
        _forget(record, stopped)
    return stopped


def _forget(record: ProcessRecord, stopped: list[str]) -> bool:
    stopped.append(f"{record.what} (pid {record.pid})")
    record.path.unlink(missing_ok=True)
    return False


def _signal(pid: int, sig: signal.Signals) -> None:
    """Signal the process group the process leads, else the process alone."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
            return
    except (ProcessLookupError, PermissionError):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)
