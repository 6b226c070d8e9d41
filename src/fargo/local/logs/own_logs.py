"""The twin's own logs, capped: Caddy's, the control plane's, the log router's, the
registry's pull log (``logs/*.log``, ``logs/*.jsonl``).

    cap(state_dir / "logs")      # each file past MAX_OWN_LOG_BYTES moves to <name>.1

Their writers hold them open in append mode (another process, often), so a file past
the cap is copied to ``<name>.1`` (replacing the older copy) and then truncated, as
logrotate's ``copytruncate`` does: the writer's next line lands at the start of the
emptied file. A line written between the copy and the truncation is lost; these logs
are the twin's own diagnostics, not the tasks' output (`fargo.local.logs.router`
rotates that without loss).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

MAX_OWN_LOG_BYTES = 10 * 2**20
SUFFIXES = (".log", ".jsonl")


def cap(logs: Path, *, max_bytes: int = MAX_OWN_LOG_BYTES) -> list[Path]:
    """Copy-truncate every own log file in ``logs`` larger than ``max_bytes``; those."""
    capped = []
    for path in sorted(logs.iterdir()) if logs.is_dir() else []:
        if path.suffix not in SUFFIXES or not path.is_file() or path.is_symlink():
            continue
        try:
            if path.stat().st_size <= max_bytes:
                continue
            older = path.with_name(path.name + ".1")
            partial = path.with_name(path.name + ".1.new")
            shutil.copyfile(path, partial)
            os.replace(partial, older)
            with path.open("r+b") as emptied:
                emptied.truncate(0)
        except OSError:  # a full disk, say: try again next time
            with contextlib.suppress(OSError):
                path.with_name(path.name + ".1.new").unlink(missing_ok=True)
            continue
        capped.append(path)
    return capped
