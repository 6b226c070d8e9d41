"""The previous runs' task logs: moved aside when a twin starts, the oldest pruned.

    archive_previous_run(state_dir / "logs", keep=3, retention_days=30)

Each run's task log folders (``logs/<service>/``) move to ``logs/runs/<when>/``, so
``fargo logs`` shows this run only; at most ``keep`` earlier runs are kept, and none
older than the spec's ``logging.retention_days`` (CloudWatch Logs' retention).
"""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

RUNS = "runs"
KEEP_RUNS = 3


def archive_previous_run(logs: Path, *, keep: int = KEEP_RUNS, retention_days: int) -> Path | None:
    """Move the task log folders under ``logs`` to a run folder; the folder, or None if
    there were none. Then prune the runs beyond ``keep`` and past the retention."""
    folders = [p for p in logs.iterdir() if p.is_dir() and p.name != RUNS] if logs.is_dir() else []
    archived = None
    if folders:
        newest = max(_newest_change(f) for f in folders)
        name = datetime.fromtimestamp(newest, UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        archived = logs / RUNS / name
        archived.mkdir(parents=True, exist_ok=True)
        for folder in folders:
            folder.rename(archived / folder.name)
    _prune(logs / RUNS, keep=keep, retention_days=retention_days)
    return archived


def _newest_change(folder: Path) -> float:
    times = [p.stat().st_mtime for p in folder.iterdir()] or [folder.stat().st_mtime]
    return max(times)


def _prune(runs: Path, *, keep: int, retention_days: int) -> None:
    if not runs.is_dir():
        return
    ordered = sorted((p for p in runs.iterdir() if p.is_dir()), key=lambda p: p.name)
    too_old = time.time() - retention_days * 86400
    for index, run in enumerate(ordered):
        if index < len(ordered) - keep or run.stat().st_mtime < too_old:
            shutil.rmtree(run, ignore_errors=True)
