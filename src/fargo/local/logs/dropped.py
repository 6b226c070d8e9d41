"""What a log writer could not write: dropped, counted, and the problem named once.

    dropped = DroppedWrites()
    try:
        write(line)
    except OSError as err:
        if dropped.drop(err, lines=1):   # True once per episode: say so once
            ...
    else:
        dropped.wrote()

A full disk (``ENOSPC``), a quota (``EDQUOT``) or a failing one (``EIO``) must not fail a
request nor block a task: every writer of the twin's logs (the log router, the events
file, the services' access log) drops the lines it cannot write instead of raising or
waiting, and counts them. An episode starts at the first failure and ends at the next
write that succeeds; `fargo status` shows the count (`DiskStatus`).
"""

from __future__ import annotations

import errno
import os
import time
from dataclasses import dataclass


def describe(err: OSError) -> str:
    """``No space left on device (ENOSPC)``: the error in words, with its name."""
    if not err.errno:
        return str(err)
    code = errno.errorcode.get(err.errno)
    words = os.strerror(err.errno)
    return f"{words} ({code})" if code else words


@dataclass
class DroppedWrites:
    """One writer's dropped lines: the total, and the current episode's problem."""

    lines: int = 0
    """Lines dropped since the writer started."""
    problem: str | None = None
    """The error of the current episode (``No space left on device (ENOSPC)``), or None
    while writes succeed."""
    since: float | None = None
    """When the current episode began (``time.time()``)."""
    last_problem: str | None = None
    """The error of the latest episode, kept after it ended."""

    def drop(self, err: OSError, *, lines: int) -> bool:
        """Count ``lines`` dropped because of ``err``; True when this starts an episode."""
        self.lines += lines
        if self.problem is not None:
            return False
        self.problem = self.last_problem = describe(err)
        self.since = time.time()
        return True

    def wrote(self) -> bool:
        """A write succeeded; True when that ends an episode."""
        if self.problem is None:
            return False
        self.problem = None
        self.since = None
        return True

    def as_dict(self) -> dict[str, object]:
        return {
            "lines": self.lines,
            "problem": self.problem,
            "since": self.since,
            "last_problem": self.last_problem,
        }
