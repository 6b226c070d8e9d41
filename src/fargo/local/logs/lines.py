"""A stored log line: the time the router read it, a space, the line as the task wrote it.

    2026-12-03T03:45:37.123456Z {"time":1764733537.1,"method":"GET","path":"/","status":200}

A line without a valid stamp (a file written some other way) parses with no time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

STAMP = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6})Z ")
STAMP_BYTES = 28  # "2026-12-03T03:45:37.123456Z "


@dataclass(frozen=True)
class LogEvent:
    """A line of a log stream (CloudWatch Logs' event: a timestamp and a message)."""

    timestamp: datetime | None
    message: str


def stamp(moment: datetime) -> bytes:
    """The prefix for a line read at ``moment`` (UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ ").encode()


def parse(line: bytes) -> LogEvent:
    """``line`` without its newline, stamped or not."""
    text = line.rstrip(b"\n")
    found = STAMP.match(text)
    if found is None:
        return LogEvent(None, text.decode("utf-8", "replace"))
    moment = datetime.strptime(found[1].decode(), "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)
    return LogEvent(moment, text[STAMP_BYTES:].decode("utf-8", "replace"))
