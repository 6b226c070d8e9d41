"""Reading log streams: each task's lines, merged in time order, from a point in time on.

    streams = find_streams(state_dir / "logs", services={"frontend"})
    for event in merged(streams, since=None):     # oldest first, across tasks
        print(event.stream.label, event.timestamp, event.message)

A stream is a task's ``<service>/<task id>.log`` and its rotated files (``.log.2`` is the
oldest, then ``.log.1``, then ``.log``). Lines without a stamp (not written by the log
router) keep their place in their stream and sort with the stamped line before them.
"""

from __future__ import annotations

import heapq
import re
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fargo.local.logs.lines import LogEvent, parse

SHORT_TASK_ID = 8
RESCAN_SECONDS = 1.0  # how often a follower looks for new tasks' streams
ROTATED = re.compile(r"\.log\.(\d+)$")
EPOCH = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class LogStream:
    """One task's log stream (the awslogs stream ``<service>/<container>/<task id>``)."""

    service: str
    task_id: str
    path: Path

    @property
    def label(self) -> str:
        return f"{self.service}/{self.task_id[:SHORT_TASK_ID]}"

    def files(self) -> list[Path]:
        """Oldest first: the rotated files by descending number, then the live one."""
        rotated = sorted(
            self.path.parent.glob(f"{self.path.name}.*"),
            key=lambda p: -int(m[1]) if (m := ROTATED.search(p.name)) else 0,
        )
        return [p for p in rotated if ROTATED.search(p.name)] + [self.path]


@dataclass(frozen=True)
class StreamEvent:
    stream: LogStream
    timestamp: datetime | None
    message: str


def find_streams(logs: Path, services: Collection[str] | None = None) -> list[LogStream]:
    """Every task's stream under ``logs`` (``<service>/<task id>.log``), of ``services`` if
    given."""
    if not logs.is_dir():
        return []
    found = []
    for folder in sorted(p for p in logs.iterdir() if p.is_dir()):
        if services is not None and folder.name not in services:
            continue
        for path in sorted(folder.glob("*.log")):
            found.append(LogStream(folder.name, path.stem, path))
    return found


def read_stream(stream: LogStream) -> Iterator[StreamEvent]:
    """The stream's lines, oldest first (a file rotated away while read may be missed)."""
    last = EPOCH
    for path in stream.files():
        try:
            with path.open("rb") as handle:
                for line in handle:
                    event = parse(line)
                    last = event.timestamp or last
                    yield StreamEvent(stream, event.timestamp or last, event.message)
        except OSError:
            continue


def merged(
    streams: Collection[LogStream], *, since: datetime | None = None
) -> Iterator[StreamEvent]:
    """Every line of ``streams`` in time order (stable within a stream)."""

    def key(event: StreamEvent) -> datetime:
        return event.timestamp or EPOCH

    events = heapq.merge(*(read_stream(s) for s in streams), key=key)
    for event in events:
        if since is None or (event.timestamp is not None and event.timestamp >= since):
            yield event


class Follower:
    """New lines of the streams under a log folder, in time order at each `poll`.

    Streams that exist when it starts are read from their end; streams that appear later
    (new tasks) from their start. ``services`` narrows to those services' tasks."""

    def __init__(
        self,
        logs: Path,
        services: Collection[str] | None = None,
        *,
        rescan_seconds: float = RESCAN_SECONDS,
    ) -> None:
        self.logs = logs
        self.services = services
        self.rescan_seconds = rescan_seconds
        self.streams: dict[Path, LogStream] = {}
        self.offsets: dict[Path, int] = {}
        for stream in find_streams(logs, services):
            self.streams[stream.path] = stream
            self.offsets[stream.path] = _size(stream.path)
        self._rescan_at = 0.0

    def poll(self) -> list[StreamEvent]:
        if time.monotonic() >= self._rescan_at:
            for stream in find_streams(self.logs, self.services):
                if stream.path not in self.streams:
                    self.streams[stream.path] = stream
                    self.offsets[stream.path] = 0
            self._rescan_at = time.monotonic() + self.rescan_seconds
        batch: list[StreamEvent] = []
        for path, stream in self.streams.items():
            lines, self.offsets[path] = follow_new(stream, self.offsets[path])
            batch += [StreamEvent(stream, e.timestamp, e.message) for e in lines]
        batch.sort(key=lambda e: e.timestamp or EPOCH)
        return batch


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def follow_new(stream: LogStream, offset: int) -> tuple[list[LogEvent], int]:
    """Complete lines appended to the live file since ``offset``, and the new offset (0 again
    after a rotation)."""
    try:
        size = stream.path.stat().st_size
        if size < offset:
            offset = 0  # rotated: the live file is new
        with stream.path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except OSError:
        return [], offset
    complete = data[: data.rfind(b"\n") + 1]
    return [parse(line) for line in complete.splitlines()], offset + len(complete)


def parse_since(text: str, now: datetime) -> datetime:
    """``10m``, ``2h``, ``30s``, ``1d`` ago, or an ISO 8601 time (UTC unless it says)."""
    found = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", text.strip())
    if found:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[found[2]]
        return now - timedelta(**{unit: float(found[1])})
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a duration (10m, 2h, 30s, 1d) nor a time (2026-12-03T04:00:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
