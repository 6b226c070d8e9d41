"""A real small file system that the tests fill up: a tmpfs mounted for the test (root).

    with small_tmpfs(tmp_path / "disk", size="2m") as disk:
        disk.fill()      # a filler file takes every free block: the next write gets ENOSPC
        ...
        disk.free()      # room again

Not root (or no right to mount): the test is skipped, saying why.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

FILLER = ".filler"


@dataclass
class SmallDisk:
    path: Path

    def fill(self) -> None:
        """Take every free block of the file system (a write after this gets ENOSPC)."""
        with (self.path / FILLER).open("ab", buffering=0) as filler:
            with contextlib.suppress(OSError):
                while True:
                    filler.write(b"\0" * 65536)
            with contextlib.suppress(OSError):
                while True:
                    filler.write(b"\0" * 512)

    def free(self) -> None:
        (self.path / FILLER).unlink(missing_ok=True)

    def shrink_to_used(self, room_bytes: int = 0) -> None:
        """Remount the file system with its size cut to what it holds now (plus
        ``room_bytes``): whatever made it large enough to start a twin, it is small now."""
        stats = os.statvfs(self.path)
        used = (stats.f_blocks - stats.f_bfree) * stats.f_frsize
        size = used + room_bytes + 4 * stats.f_frsize
        subprocess.run(
            ["mount", "-o", f"remount,size={size}", str(self.path)], check=True, timeout=30
        )


@contextlib.contextmanager
def small_tmpfs(path: Path, *, size: str) -> Iterator[SmallDisk]:
    """A tmpfs of ``size`` (``2m``) at ``path``, owner-only, unmounted at the end."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill up needs root (mount -t tmpfs)")
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield SmallDisk(path)
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=False, timeout=30)
