"""Source an unprivileged user can read: the checkout may sit in a folder only root may
enter (a CI clone in a 0700 temp folder), so ``nobody`` gets a copy of ``fargo``.

    src = readable_source()        # put on nobody's PYTHONPATH
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from pathlib import Path

SRC = Path(__file__).resolve().parents[3] / "src"


@functools.cache
def readable_source() -> Path:
    """A world-readable copy of ``src/fargo`` (made once per test session)."""
    root = Path(tempfile.mkdtemp(prefix="fargo-src-for-nobody-"))
    shutil.copytree(SRC / "fargo", root / "fargo", ignore=shutil.ignore_patterns("__pycache__"))
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root


def readable_copy(file: Path) -> Path:
    """``file`` next to the readable source, where ``nobody`` can read it."""
    target = readable_source() / file.name
    shutil.copyfile(file, target)
    target.chmod(0o644)
    return target
