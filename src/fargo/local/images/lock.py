"""A lock for one build step that two processes may run at once (two ``fargo up``, a
``fargo build`` beside a running twin): the second waits, then finds the work done.

    with build_lock(folder.with_name(folder.name + ".lock")):
        if not (folder / ".complete").exists():
            ...  # build it
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def build_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) while the block runs; the
    kernel releases it if the holder dies, so a stale lock file is harmless."""
    with _locked(path, fcntl.LOCK_EX):
        yield


@contextlib.contextmanager
def try_build_lock(path: Path) -> Iterator[bool]:
    """`build_lock` if no one holds it now (True), else nothing held (False)."""
    try:
        with _locked(path, fcntl.LOCK_EX | fcntl.LOCK_NB):
            yield True
    except BlockingIOError:
        yield False


@contextlib.contextmanager
def _locked(path: Path, operation: int) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, operation)
        yield
    finally:
        os.close(fd)  # closing releases the lock
