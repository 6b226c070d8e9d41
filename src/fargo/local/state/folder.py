"""The twin's state folder (``.fargo/`` by default) and the processes recorded in it.

    .fargo/.fargo-state        marker: this folder belongs to the twin (see `prepare`)
    .fargo/lock                held (flock) by the control plane for its whole life
    .fargo/control.sock        control plane API (unix socket, owner only)
    .fargo/pids/*.json         every process the twin started: control plane, Caddy, tasks,
                               the DNS processes (`fargo.local.dataplane_dns`)
    .fargo/logs/               control-plane.log, caddy.log, <service>/<task-id>.log
    .fargo/ca/, certs/         the local CA and the listener certificate
    .fargo/registry/           pushed images
    .fargo/caddy/              generated proxy config, Caddy's admin socket, targets.json
    .fargo/dns/                discovery.json: the records the discovery DNS process answers

Only the current user may have written it: a folder, ``pids/`` or pid record owned by
another user or writable by group or others is refused (`fargo.local.state.ownership`).

`sweep` stops every recorded process that still runs — what `fargo down` does
when the control plane itself is gone (killed with SIGKILL, say). The twin only
ever locks down, writes into or signals processes listed in a folder carrying the
marker, so ``--state-dir ~`` or ``--state-dir /tmp`` cannot harm what is there.

The lock is in `fargo.local.state.lock`, the errors in `fargo.local.state.errors`; both
are importable from here.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from fargo.local.pid_namespace import kill_namespace
from fargo.local.state.errors import StateDirError as StateDirError
from fargo.local.state.errors import StateLocked as StateLocked
from fargo.local.state.files import write_atomically
from fargo.local.state.lock import exclusive_lock as exclusive_lock
from fargo.local.state.lock import lock_holder as lock_holder
from fargo.local.state.lock import locked as locked
from fargo.local.state.ownership import check_trusted

MARKER = ".fargo-state"
# What a new control plane sets aside of a killed one's run it takes over: process
# records and (VPC mode) folders, "previous-<name>" (`fargo.local.control.handover`).
SET_ASIDE_PREFIX = "previous-"
PREVIOUS_RUN = "previous-run.txt"  # what `fargo up` did with a crashed run's processes
CONTROL_SOCKET = "control.sock"
PID_DIRECTORY = "pids"
CONTROL_PLANE_RECORD = "control-plane.json"
# Unix sockets the twin binds in the folder (control plane here, Caddy's in caddy.py and
# elb_data_plane.py); the longest must fit in sun_path.
SOCKET_PATHS = (
    CONTROL_SOCKET,
    "caddy/admin.sock",
    "caddy/unavailable.sock",
    "caddy/handover.sock",
)
SOCKET_PATH_LIMIT = 107  # bytes: Linux's sun_path is 108 with the terminating NUL


def check_socket_paths(state_dir: Path) -> None:
    """Refuse a folder whose unix socket paths would be too long for the kernel."""
    longest = max((state_dir / name for name in SOCKET_PATHS), key=lambda p: len(os.fsencode(p)))
    if len(os.fsencode(longest)) > SOCKET_PATH_LIMIT:
        raise StateDirError(
            f"the state folder {state_dir} is too deep: the unix socket {longest} would be "
            f"{len(os.fsencode(longest))} bytes long, the limit is {SOCKET_PATH_LIMIT}; "
            "choose a shorter --state-dir (e.g. /tmp/fargo-<name>)"
        )


def is_state_dir(state_dir: Path) -> bool:
    """Whether the folder is the twin's: it carries the marker."""
    return (state_dir / MARKER).is_file()


def prepare(state_dir: Path) -> None:
    """Create the folder (owner only) with its marker, or check that an existing one is ours.

    An existing folder is used only if it is empty or already the twin's, and only if
    the current user owns it and nobody else may write it (`check_trusted`); its mode is
    otherwise left alone (only a folder created here is made owner-only). Raises
    `StateDirError`.
    """
    check_socket_paths(state_dir)
    try:
        if _create(state_dir):
            pass  # ours, and empty until the marker below
        elif not state_dir.is_dir():
            raise StateDirError(f"--state-dir {state_dir} exists and is not a folder")
        check_trusted(state_dir, "the state folder", state_dir=state_dir)
        if (entries := os.listdir(state_dir)) and MARKER not in entries:
            # One listing, not two checks: another `fargo up` may be creating the folder
            # right now, and it writes the marker before anything else.
            raise StateDirError(
                f"--state-dir {state_dir} is not empty and is not a fargo state folder "
                f"(no {MARKER} in it); the twin will not write into it. Choose a new or "
                "empty folder, e.g. --state-dir .fargo"
            )
        (state_dir / MARKER).touch()
        for sub in ("logs", PID_DIRECTORY):
            (state_dir / sub).mkdir(mode=0o700, exist_ok=True)
        pids = state_dir / PID_DIRECTORY
        status = pids.lstat()
        if (
            stat.S_ISDIR(status.st_mode)
            and status.st_uid == os.geteuid()
            and status.st_mode & 0o077
        ):
            # Ours, made by an older fargo under a umask like 002: tightened. A record
            # someone else put there meanwhile is still refused: `recorded_processes`
            # checks each record's owner.
            os.chmod(pids, 0o700)
        check_trusted(pids, "the pid folder", state_dir=state_dir)
    except OSError as err:
        raise StateDirError(f"cannot use {state_dir} as the state folder: {_reason(err)}") from err


def _create(state_dir: Path) -> bool:
    """Create the folder owner-only; False if it exists (two `fargo up` may race here)."""
    state_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        state_dir.mkdir(mode=0o700)
    except FileExistsError:
        return False
    os.chmod(state_dir, 0o700)  # mkdir's mode is filtered through the umask
    return True


def _reason(err: OSError) -> str:
    where = f" ({err.filename})" if err.filename else ""
    return f"{err.strerror or err}{where}"


def control_socket(state_dir: Path) -> Path:
    """The control plane's socket; `StateDirError` if someone else could have put it there."""
    if state_dir.exists():
        check_trusted(state_dir, "the state folder", state_dir=state_dir)
    return state_dir / CONTROL_SOCKET


@dataclass(frozen=True)
class ProcessRecord:
    """A process the twin started; ``created`` guards against a reused pid.

    ``pgid`` is the process group it led when recorded (None if it led none): its
    members may outlive it.
    """

    path: Path
    pid: int
    created: float
    what: str
    pgid: int | None = None

    def alive(self) -> bool:
        """The process itself runs (a zombie is dead)."""
        try:
            process = psutil.Process(self.pid)
            return self._same(process) and process.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def group_alive(self) -> bool:
        """A process of the group it led still runs, even if the leader itself is gone."""
        if self.pgid is None:
            return False
        try:
            if not self._same(psutil.Process(self.pid)):
                return False  # the pid went to another process: the group id may be its
        except psutil.NoSuchProcess:
            pass  # gone; while its group exists no process can be given the id
        except psutil.Error:
            return False
        try:
            os.killpg(self.pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return bool(_group_members(self.pgid))

    def running(self) -> bool:
        return self.alive() or self.group_alive()

    def _same(self, process: psutil.Process) -> bool:
        return abs(process.create_time() - self.created) < 1.0


def _group_members(pgid: int) -> list[int]:
    """Pids of the group's processes that are not zombies."""
    members = []
    for process in psutil.process_iter(["status"]):
        try:
            if process.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(process.pid) == pgid:
                members.append(process.pid)
        except (OSError, psutil.Error):
            continue
    return members


def record_process(state_dir: Path, name: str, pid: int, what: str) -> Path:
    """Write ``pids/<name>.json`` for a process the twin started (atomically)."""
    try:
        created = psutil.Process(pid).create_time()
    except psutil.Error:
        created = time.time()
    try:
        pgid: int | None = os.getpgid(pid)
    except OSError:
        pgid = None
    path = state_dir / PID_DIRECTORY / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"pid": pid, "created": created, "what": what, "pgid": pgid if pgid == pid else None}
    # A reader never sees half a record: `recorded_processes` deletes unparsable ones,
    # which would leak the process.
    write_atomically(path, json.dumps(data).encode())
    return path


def forget_process(state_dir: Path, name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        (state_dir / PID_DIRECTORY / f"{name}.json").unlink()


def recorded_processes(state_dir: Path) -> list[ProcessRecord]:
    """The pid records; `StateDirError` if the folder, ``pids/`` or a record is not only ours.

    Nothing is acted on then: `sweep` and `fargo down` stop before signalling anything.
    """
    pids = state_dir / PID_DIRECTORY
    if not pids.is_dir():
        return []
    check_trusted(state_dir, "the state folder", state_dir=state_dir)
    check_trusted(pids, "the pid folder", state_dir=state_dir)
    paths = []
    for path in sorted(pids.glob("*.json")):
        with contextlib.suppress(FileNotFoundError):  # forgotten meanwhile
            check_trusted(path, "the pid record", state_dir=state_dir)
            paths.append(path)
    records = []
    for path in paths:
        try:
            data = json.loads(path.read_text())
            pgid = data.get("pgid")
            records.append(
                ProcessRecord(
                    path,
                    int(data["pid"]),
                    float(data["created"]),
                    str(data["what"]),
                    int(pgid) if pgid is not None else None,
                )
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            path.unlink(missing_ok=True)
    return records


def control_plane(state_dir: Path) -> ProcessRecord | None:
    """The running control plane of this state folder, if any."""
    if not (state_dir / PID_DIRECTORY).is_dir():
        return None
    for record in recorded_processes(state_dir):
        if record.path.name == CONTROL_PLANE_RECORD and record.alive():
            return record
    return None


def sweep(
    state_dir: Path, grace: float = 5.0, *, only: Callable[[ProcessRecord], bool] | None = None
) -> list[str]:
    """Stop every recorded process still running (its whole process group); forget the rest.

    ``only``: just the records it accepts. Does nothing in a folder that is not the
    twin's (see `is_state_dir`).
    """
    if not is_state_dir(state_dir):
        return []
    stopped: list[str] = []
    live: list[ProcessRecord] = []
    for record in recorded_processes(state_dir):
        if only is not None and not only(record):
            continue
        if record.running():
            live.append(record)
            _signal(record, signal.SIGTERM)
        else:
            record.path.unlink(missing_ok=True)
    deadline = time.monotonic() + grace
    while live and time.monotonic() < deadline:
        live = [r for r in live if r.running() or _forget(r, stopped)]
        if live:
            time.sleep(0.05)
    for record in live:
        kill_namespace(record.pid)  # a task's command, should it have cleared its death signal
        _signal(record, signal.SIGKILL)
        _forget(record, stopped)
    return stopped


def _forget(record: ProcessRecord, stopped: list[str]) -> bool:
    stopped.append(f"{record.what} (pid {record.pid})")
    record.path.unlink(missing_ok=True)
    return False


def _signal(record: ProcessRecord, sig: signal.Signals) -> None:
    """Signal the process group the process led (even if the leader is gone), else the process."""
    if record.pgid is not None and record.group_alive():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(record.pgid, sig)
        return
    if not record.alive():
        return
    try:
        if os.getpgid(record.pid) == record.pid:
            os.killpg(record.pid, sig)
            return
    except (ProcessLookupError, PermissionError):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(record.pid, sig)


def remove_set_aside(state_dir: Path) -> None:
    """Remove the folders a take-over set aside (``previous-*``), their processes stopped."""
    with contextlib.suppress(OSError):
        for folder in state_dir.iterdir():
            name = folder.name
            if name.startswith(SET_ASIDE_PREFIX) and folder.is_dir() and not folder.is_symlink():
                shutil.rmtree(folder, ignore_errors=True)
