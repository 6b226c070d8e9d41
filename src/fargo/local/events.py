"""The control plane's events: one logging setup, kept in the state folder, read back.

Every part logs to a logger under ``fargo`` (``logging.getLogger(__name__)``). An event
says what it is about with ``extra=about("service", "backend-private")`` — the source
(``service``, ``target-group``, ``load-balancer``, ``twin``) and its name — so
``fargo events --service backend-private`` can pick it out, as ECS's service events do:

    logger.info("started task 3f2a… at 10.0.10.7:8090", extra=about("service", name))

`configure_logging` (the control plane calls it once) sends the records, timestamped,
to ``.fargo/events.jsonl`` (one JSON object per line, rotated at `MAX_EVENT_FILE_BYTES`)
and to the console of a foreground ``fargo up`` (or ``logs/control-plane.log``).
`fargo events` (`fargo.local.cli.events`) reads them back, oldest first.

A full disk fails no part: an event the file system refuses is kept (the last
`BACKLOG_EVENTS`), counted (`dropped_events`), and written before the next event that
fits; the console drops what it cannot write.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from fargo.local.logs.dropped import DroppedWrites

EVENTS_FILE = "events.jsonl"
MAX_EVENT_FILE_BYTES = 2 * 1024 * 1024  # then the file moves to events.jsonl.1 (one kept)
BACKLOG_EVENTS = 1000  # kept while the disk is full, written when it has room again
ROOT_LOGGER = "fargo"
SOURCE = "fargo_source"
SUBJECT = "fargo_subject"


def about(source: str, subject: str) -> dict[str, str]:
    """The ``extra`` of a log record about ``source`` ``subject`` (a service, a group …)."""
    return {SOURCE: source, SUBJECT: subject}


@dataclass(frozen=True)
class Event:
    """One line of ``fargo events``."""

    time: str  # ISO 8601, UTC, milliseconds
    level: str
    source: str  # service | target-group | load-balancer | twin
    subject: str
    message: str

    def render(self) -> str:
        clock = self.time[11:23]
        where = f"({self.source} {self.subject}) " if self.subject else ""
        level = "" if self.level == "INFO" else f"{self.level}: "
        return f"{clock} {level}{where}{self.message}"


def event_of(record: logging.LogRecord) -> Event:
    moment = datetime.fromtimestamp(record.created, UTC)
    message = record.getMessage()
    if record.exc_info and record.exc_info[1] is not None:
        message = f"{message}: {record.exc_info[1]!r}"
    return Event(
        time=moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        level=record.levelname,
        source=str(getattr(record, SOURCE, "twin")),
        subject=str(getattr(record, SUBJECT, "")),
        message=message,
    )


class EventFileHandler(logging.Handler):
    """Appends each record as an `Event` to ``events.jsonl``; rotates it when it grows.

    An event the file system refuses (a full disk) waits in a bounded backlog and is
    written, in order, before the next event that fits; ``dropped`` has the episode's
    problem and counts the events lost for good (pushed out of a full backlog)."""

    def __init__(self, path: Path, max_bytes: int = MAX_EVENT_FILE_BYTES) -> None:
        super().__init__(logging.INFO)
        self.path = path
        self.max_bytes = max_bytes
        self.dropped = DroppedWrites()
        self._backlog: deque[bytes] = deque(maxlen=BACKLOG_EVENTS)
        self._write_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = (json.dumps(asdict(event_of(record))) + "\n").encode()
        except Exception:
            self.handleError(record)
            return
        with self._write_lock:
            if len(self._backlog) == self._backlog.maxlen:
                self.dropped.lines += 1  # the oldest waiting event goes
            self._backlog.append(line)
            try:
                self._append(b"".join(self._backlog))
            except OSError as err:
                self.dropped.drop(err, lines=0)
                return
            self._backlog.clear()
            self.dropped.wrote()

    def _append(self, data: bytes) -> None:
        """``data`` appended whole, or (a short write, then an error) not at all."""
        if self.path.exists() and self.path.stat().st_size > self.max_bytes:
            self.path.replace(self.path.with_name(self.path.name + ".1"))
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            size = os.fstat(fd).st_size
            written = 0
            try:
                while written < len(data):
                    written += os.write(fd, data[written:])
            except OSError:
                if written:
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, size)
                raise
        finally:
            os.close(fd)


class ConsoleHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The console of ``fargo up``: a line it cannot write (its file on a full disk) is
    dropped without a traceback; the events file keeps it."""

    def handleError(self, record: logging.LogRecord) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            return
        super().handleError(record)


def dropped_events() -> DroppedWrites | None:
    """What this process's events file could not write, or None if events are not kept."""
    for handler in logging.getLogger(ROOT_LOGGER).handlers:
        if isinstance(handler, EventFileHandler):
            return handler.dropped
    return None


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = event_of(record).render()
        if record.exc_info and record.levelno >= logging.ERROR:
            text += "\n" + self.formatException(record.exc_info)
        return text


def configure_logging(state_dir: Path, console: TextIO | None) -> list[logging.Handler]:
    """Route the ``fargo`` loggers to the events file and ``console``; returns the handlers
    (`remove_handlers` takes them off again)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    handlers: list[logging.Handler] = [EventFileHandler(state_dir / EVENTS_FILE)]
    if console is not None:
        stream = ConsoleHandler(console)
        stream.setLevel(logging.INFO)
        stream.setFormatter(ConsoleFormatter())
        handlers.append(stream)
    root = logging.getLogger(ROOT_LOGGER)
    root.setLevel(logging.INFO)
    for handler in handlers:
        root.addHandler(handler)
    return handlers


def remove_handlers(handlers: list[logging.Handler]) -> None:
    root = logging.getLogger(ROOT_LOGGER)
    for handler in handlers:
        root.removeHandler(handler)
        handler.close()


def event_files(state_dir: Path) -> list[Path]:
    """The events files, oldest first."""
    current = state_dir / EVENTS_FILE
    return [p for p in (current.with_name(current.name + ".1"), current) if p.exists()]


def parse_events(lines: Iterator[str]) -> Iterator[Event]:
    for line in lines:
        try:
            data: Mapping[str, Any] = json.loads(line)
            yield Event(**{k: str(data[k]) for k in Event.__dataclass_fields__})
        except (ValueError, KeyError, TypeError):
            continue  # a line cut by a crash mid-write
