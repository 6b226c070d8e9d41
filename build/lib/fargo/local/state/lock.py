"""The state folder's lock (``<state>/lock``): held by the control plane for its whole life.

A second ``fargo up`` on the same folder finds it held and says who holds it; ``fargo
down`` and ``fargo status`` probe it to tell a starting control plane from none.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from fargo.local.state.errors import StateLocked

LOCK_FILE = "lock"
LOCK_PATIENCE_SECONDS = 0.5


@contextlib.contextmanager
def exclusive_lock(state_dir: Path, *, patience: float = LOCK_PATIENCE_SECONDS) -> Iterator[None]:
    """Hold ``<state>/lock`` for as long as the block runs; `StateLocked` if another does.

    The lock dies with its holder (even on SIGKILL), so it never needs cleaning up; it
    carries the holder's pid for messages. `locked` probes it with a shared lock for a
    moment, hence the ``patience`` before giving up.
    """
    fd = os.open(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + patience
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as err:
                if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise StateLocked(state_dir, _lock_holder_pid(state_dir)) from None
                time.sleep(0.02)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        os.close(fd)


def locked(state_dir: Path) -> bool:
    """Whether a control plane holds this folder's lock right now (a probe of a moment)."""
    try:
        fd = os.open(state_dir / LOCK_FILE, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def lock_holder(state_dir: Path) -> int | None:
    """The pid of the control plane holding the lock, or None if nobody holds it."""
    return _lock_holder_pid(state_dir) if locked(state_dir) else None


def _lock_holder_pid(state_dir: Path) -> int | None:
    try:
        return int((state_dir / LOCK_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
