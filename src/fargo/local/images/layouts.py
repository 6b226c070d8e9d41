"""This machine's cache of laid-out images: an image's stages as its build left them
(the build context's files copied, ``RUN python -m compileall`` run), so a new state
folder, a second project or a test run gets an unchanged image by copying its files
instead of laying them out and compiling them again, as Docker's build cache spares a
build the steps it ran before.

    layouts = Layouts(cache_folder("layouts"))
    key = layout_key(image_digest, compiled_by)   # the compiling interpreter's identity
    if not layouts.copy(key, staging / "stages"):
        ...  # lay the stages out
        layouts.keep(key, staging / "stages")

A layout is keyed by the image's digest (the Dockerfile and every context file its build
reads) and the interpreter that compiled its bytecode. Tasks run its files, so the cache
is trusted as the environments are (`fargo.local.images.cache`: the user's alone); a
layout unused for `UNUSED_DAYS` is pruned when a new one is kept, and one is never
pruned while it is being copied (both hold the layout's lock).
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import tempfile
import time
from pathlib import Path

from fargo.local.images.cache import COMPLETE, LOCK_SUFFIX, mark_used, prune_unused
from fargo.local.images.lock import build_lock

STAGES = "stages"
# A copy a killed build left while keeping a layout (``.<key>.<random>``) is removed
# after this long (a build keeping one right now takes milliseconds).
STALE_STAGING_SECONDS = 3600.0


def layout_key(image_digest: str, compiled_by: str | None) -> str:
    """The key of an image's layout: its digest, and the interpreter that compiled it
    (None: nothing compiled)."""
    return hashlib.sha256(f"{image_digest}\0{compiled_by or ''}".encode()).hexdigest()[:32]


class Layouts:
    """The laid-out images kept in ``directory``, one folder per key."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def copy(self, key: str, stages: Path) -> bool:
        """Copy the layout ``key`` to ``stages`` (which must not exist); False when it is
        not kept (``stages`` is then left as it was)."""
        kept = self.directory / key
        if not (kept / COMPLETE).is_file():
            return False
        with build_lock(self._lock(key)):  # not pruned meanwhile
            if not (kept / COMPLETE).is_file():
                return False
            mark_used(kept)
            try:
                shutil.copytree(kept / STAGES, stages, symlinks=True)
            except (OSError, shutil.Error):  # unreadable, a full disk: lay it out
                shutil.rmtree(stages, ignore_errors=True)
                return False
        return True

    def keep(self, key: str, stages: Path) -> None:
        """Keep a copy of ``stages`` as layout ``key``, whole or not at all; a copy kept
        by another build meanwhile stays. Failing to keep it (a full disk) only costs the
        next build its time."""
        kept = self.directory / key
        if (kept / COMPLETE).is_file():
            return
        with contextlib.suppress(OSError, shutil.Error):
            staging = Path(tempfile.mkdtemp(dir=self.directory, prefix=f".{key}."))
            try:
                shutil.copytree(stages, staging / STAGES, symlinks=True)
                (staging / COMPLETE).write_text("")
                with build_lock(self._lock(key)):
                    if not (kept / COMPLETE).is_file():
                        shutil.rmtree(kept, ignore_errors=True)  # what a cut prune left
                        staging.rename(kept)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            self._prune()

    def _lock(self, key: str) -> Path:
        return self.directory / f"{key}{LOCK_SUFFIX}"

    def _prune(self) -> None:
        prune_unused(self.directory)
        cutoff = time.time() - STALE_STAGING_SECONDS
        for staging in self.directory.glob(".*"):
            with contextlib.suppress(OSError):
                if staging.is_dir() and staging.stat().st_mtime < cutoff:
                    shutil.rmtree(staging, ignore_errors=True)
