"""Files the twin writes and reads in its state folder: atomic writes and log tails.

A reader never sees half a file: pid records, keys, certificates and the proxy
config are written to a temporary file beside the target, with their final mode
from the first byte, and renamed over it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections import deque
from pathlib import Path

LOG_TAIL_LINES = 12


def write_atomically(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` (file ``mode``) in one rename."""
    # Unique per call: two threads (or processes) may write the same path at once.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # os.open's mode is filtered through the umask
        with os.fdopen(fd, "wb", closefd=False) as file:
            file.write(data)
            file.flush()
            os.fsync(fd)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    finally:
        os.close(fd)


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last ``lines`` lines of a log; none if it cannot be read."""
    try:
        with path.open(encoding="utf-8", errors="replace") as log:
            return [line.rstrip("\n") for line in deque(log, maxlen=lines)]
    except OSError:
        return []
