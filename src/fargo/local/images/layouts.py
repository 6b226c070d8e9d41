"""This machine's cache of laid-out images: an image's stages as its build left them
(the build context's files copied, ``RUN python -m compileall`` run), so a new state
folder, a second project or a test run gets an unchanged image by copying its files
instead of laying them out and compiling them again, as Docker's layer cache spares a
build the steps it ran before.

    layouts = Layouts(cache_folder("layouts"))
    key = layout_key(image_digest, interpreter)   # the compiling interpreter, if any
    if not layouts.copy(key, staging / "stages"):
        ...  # lay the stages out
        layouts.keep(key, staging / "stages")

A layout is keyed by the image's digest (the Dockerfile and every context file its build
reads) and the interpreter that compiled its bytecode. Tasks run its files, so the cache
is trusted as the environments are (`fargo.local.images.cache`), and a layout unused
for `UNUSED_DAYS` is pruned when a new one is kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import tempfile
from pathlib import Path

from fargo.local.images.cache import COMPLETE, mark_used, prune_unused

STAGES = "stages"


def layout_key(image_digest: str, interpreter: Path | None) -> str:
    """The key of an image's layout: its digest, and the interpreter that compiled it."""
    compiled_by = str(interpreter) if interpreter else ""
    return hashlib.sha256(f"{image_digest}\0{compiled_by}".encode()).hexdigest()[:32]


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
        mark_used(kept)  # before reading: a layout in use is not pruned
        try:
            shutil.copytree(kept / STAGES, stages, symlinks=True)
        except (OSError, shutil.Error):  # pruned meanwhile, or unreadable: lay it out
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
                staging.rename(kept)  # fails if another build kept it first
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            prune_unused(self.directory)
