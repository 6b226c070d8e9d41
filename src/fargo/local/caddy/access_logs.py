"""The load balancers' access logs in ALB's format, written from Caddy's, off the request path.

    delivery = AccessLogDelivery(state_dir, names=lambda: AlbNames(spec),
                                 targets=lambda: {"127.0.1.7:8090": "backend-public"},
                                 on_entry=metrics.record)
    await delivery.start()     # a thread: follows .fargo/logs/lb-access/<lb>.json
    ...                        # .fargo/logs/alb/<lb>/access.log, one ALB line per request
    await delivery.stop()

Caddy writes each load balancer's access log as JSON lines to a file
(`fargo.local.caddy.access_log`): a request never waits for anything but that write.
A thread of the control plane follows those files (also across Caddy's rolls), turns
each entry into an ALB line (`fargo.local.caddy.access_entries` reads it,
`fargo.local.elb.access_log` writes it), appends it to
``logs/alb/<load balancer>/access.log`` — rolled at `ROLL_BYTES` into ``access.log.1``
… ``access.log.<ROLL_KEEP>``; none for a load balancer whose ``access_logs.enabled`` is
false — and hands the entry to ``on_entry`` (the metrics, which every load balancer has).

A full disk costs lines, never requests: Caddy drops the lines it cannot write and
goes on serving; here a line that cannot be written is dropped, reported once in the
control plane's log until writing works again, and counted (`dropped_lines`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

import orjson

from fargo.local.caddy.access_entries import from_caddy
from fargo.local.caddy.access_log import access_log_path
from fargo.local.elb.access_log import AccessLogEntry, AlbNames, alb_line
from fargo.local.events import about

logger = logging.getLogger(__name__)
ACCESS_LOGS = about("load-balancer", "access logs")

POLL_SECONDS = 0.2
ROLL_BYTES = 16 * 2**20
ROLL_KEEP = 3
READ_CHUNK = 1 << 20
DELIVERY_NICENESS = 10  # the thread's nice value (Linux schedules threads one by one)


def caddy_access_logs(state_dir: Path) -> Path:
    """Where Caddy writes the load balancers' JSON access logs."""
    return state_dir / "logs" / "lb-access"


def alb_access_logs(state_dir: Path) -> Path:
    """Where the ALB-format access logs are: ``<this>/<load balancer>/access.log``."""
    return state_dir / "logs" / "alb"


class LogFollower:
    """New complete lines of a file that Caddy appends to and rolls (renames, then starts anew)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None
        self._inode: int | None = None
        self._partial = b""

    def read_lines(self) -> list[bytes]:
        lines: list[bytes] = []
        if self._file is None and not self._open():
            return lines
        lines += self._drain()
        try:
            inode = os.stat(self.path).st_ino
        except FileNotFoundError:
            return lines
        if inode != self._inode:  # rolled: the rest of the old file, then the new one
            lines += self._drain()
            self.close()
            if self._open():
                lines += self._drain()
        elif self._file is not None and os.fstat(self._file.fileno()).st_size < self._file.tell():
            self._file.seek(0)  # truncated
            self._partial = b""
        return lines

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file, self._inode, self._partial = None, None, b""

    def _open(self) -> bool:
        try:
            self._file = self.path.open("rb")
        except FileNotFoundError:
            return False
        self._inode = os.fstat(self._file.fileno()).st_ino
        return True

    def _drain(self) -> list[bytes]:
        assert self._file is not None
        lines: list[bytes] = []
        while chunk := self._file.read(READ_CHUNK):
            parts = (self._partial + chunk).split(b"\n")
            self._partial = parts.pop()
            lines += parts
        return lines


class RollingLog:
    """An append-only text file rolled at ``roll_bytes`` (``.1`` the newest old one)."""

    def __init__(self, path: Path, *, roll_bytes: int = ROLL_BYTES, keep: int = ROLL_KEEP) -> None:
        self.path = path
        self.roll_bytes = roll_bytes
        self.keep = keep
        self._file: IO[str] | None = None

    def write(self, lines: list[str]) -> None:
        """Append ``lines``; raises OSError (e.g. a full disk) with nothing half-kept open."""
        text = "".join(line + "\n" for line in lines)
        try:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                self._file = self.path.open("a", encoding="utf-8")
            self._file.write(text)
            self._file.flush()
            if self._file.tell() >= self.roll_bytes:
                self._roll()
        except OSError:
            self.close()
            raise

    def close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    def _roll(self) -> None:
        self.close()
        for number in range(self.keep - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{number}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{number + 1}"))
        self.path.replace(self.path.with_name(f"{self.path.name}.1"))


class AccessLogDelivery:
    """Follows Caddy's access logs and writes them in ALB's format (see the module notes)."""

    name = "load balancer access logs"

    def __init__(
        self,
        state_dir: Path,
        *,
        names: Callable[[], AlbNames],
        targets: Callable[[], Mapping[str, str]] = dict,
        on_entry: Callable[[AccessLogEntry], None] | None = None,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.source = caddy_access_logs(state_dir)
        self.destination = alb_access_logs(state_dir)
        self._names = names
        self._targets = targets
        self._on_entry = on_entry
        self._poll = poll_seconds
        self._followers: dict[str, LogFollower] = {}
        self._logs: dict[str, RollingLog] = {}
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.dropped_lines = 0
        self.lines = 0
        self._failing = False

    def validate(self) -> list[str]:
        return []

    async def start(self) -> None:
        if self._thread is not None:
            return
        self.source.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="alb access logs", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        await asyncio.to_thread(thread.join)
        self.deliver()  # what Caddy wrote until it stopped
        for follower in self._followers.values():
            follower.close()
        for log in self._logs.values():
            log.close()

    def _run(self) -> None:
        # Below the control plane's other threads. Linux's autogroup scheduling weighs the
        # control plane's session against Caddy's and the tasks' as a whole, so this does
        # not keep its CPU from them on a saturated machine: each entry is made cheap
        # instead (`fargo.local.caddy.access_entries`).
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), DELIVERY_NICENESS)
        while not self._stopping.wait(self._poll):
            try:
                self.deliver()
            except Exception:
                logger.exception("delivering the access logs failed", extra=ACCESS_LOGS)

    def deliver(self) -> int:
        """One round: every new Caddy entry written as an ALB line; the number delivered."""
        names = self._names()
        targets = dict(self._targets())
        delivered = 0
        # Each load balancer's own file alone: Caddy's rolled copies beside it
        # (``public-<time>-size.json``) hold entries its follower read before the roll.
        for load_balancer, lb in sorted(names.spec.load_balancers.items()):
            follower = self._followers.get(load_balancer)
            if follower is None:
                path = access_log_path(self.source, load_balancer)
                follower = self._followers[load_balancer] = LogFollower(path)
            entries = [e for raw in follower.read_lines() if (e := _entry(raw, names, targets))]
            if not entries:
                continue
            delivered += len(entries)
            if lb.access_logs.enabled:
                self._write(load_balancer, [alb_line(e) for e in entries])
            if self._on_entry is not None:
                for entry in entries:
                    self._on_entry(entry)
        return delivered

    def _write(self, load_balancer: str, lines: list[str]) -> None:
        log = self._logs.get(load_balancer)
        if log is None:
            log = self._logs[load_balancer] = RollingLog(
                self.destination / load_balancer / "access.log"
            )
        try:
            log.write(lines)
        except OSError as err:
            self.dropped_lines += len(lines)
            if not self._failing:
                self._failing = True
                logger.warning(
                    "cannot write the access log %s (%s): dropping its lines until it can",
                    log.path,
                    err.strerror or err,
                    extra=ACCESS_LOGS,
                )
            return
        self.lines += len(lines)
        if self._failing:
            self._failing = False
            logger.info(
                "writing the access logs again (%d lines dropped so far)",
                self.dropped_lines,
                extra=ACCESS_LOGS,
            )


def _entry(raw: bytes, names: AlbNames, targets: dict[str, str]) -> AccessLogEntry | None:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None  # a line Caddy could not finish (a full disk)
    return from_caddy(data, names, targets) if isinstance(data, dict) else None
