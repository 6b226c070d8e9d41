"""The previous runs' task logs: moved aside when a twin starts, the oldest pruned.

    archive_previous_run(state_dir / "logs", keep=3, retention_days=30)
    expire(state_dir / "logs", retention_days=30)     # while a twin runs, now and then

Each run's task log folders (``logs/<service>/``) move to ``logs/runs/<when>/``, so
``fargo logs`` shows this run only; at most ``keep`` earlier runs are kept, and none
older than the spec's ``logging.retention_days`` (CloudWatch Logs' retention). While a
twin runs, `expire` deletes what passed the retention: earlier runs, this run's task
log files (rotated ones, and streams of tasks stopped long ago) last written before it,
and the load balancers' rolled access logs (``logs/alb/<load balancer>/access.log.<n>``,
also in the earlier runs kept; never the ``access.log`` being written). It stays in
``logs``: a symlink to a folder is not followed.
"""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

RUNS = "runs"
KEEP_RUNS = 3
RUN_NAME = "%Y%m%dT%H%M%S.%fZ"  # a run folder is named for its logs' last change
# the load balancers' access logs, ``alb/<load balancer>/access.log`` and its rolled copies
# ``access.log.<n>`` (`fargo.local.caddy.access_logs`)
ALB = "alb"
ACCESS_LOG = "access.log"


def archive_previous_run(logs: Path, *, keep: int = KEEP_RUNS, retention_days: int) -> Path | None:
    """Move the task log folders under ``logs`` to a run folder; the folder, or None if
    there were none. Then prune the runs beyond ``keep`` and past the retention."""
    folders = [p for p in logs.iterdir() if p.is_dir() and p.name != RUNS] if logs.is_dir() else []
    archived = None
    if folders:
        newest = max(_newest_change(f) for f in folders)
        name = datetime.fromtimestamp(newest, UTC).strftime(RUN_NAME)
        archived = logs / RUNS / name
        archived.mkdir(parents=True, exist_ok=True)
        for folder in folders:
            folder.rename(archived / folder.name)
    _prune(logs / RUNS, keep=keep, retention_days=retention_days)
    return archived


def expire(logs: Path, *, retention_days: int, now: float | None = None) -> list[Path]:
    """Delete the task log files, the load balancers' rolled access logs and the earlier
    runs under ``logs`` last changed more than ``retention_days`` ago; what was deleted."""
    cutoff = (time.time() if now is None else now) - retention_days * 86400
    gone: list[Path] = []
    for folder in _subfolders(logs):
        if folder.name == RUNS:
            gone += _expire_runs(folder, cutoff)
            continue
        old = [p for p in folder.iterdir() if _is_task_log(p)]
        if folder.name == ALB:
            old += _rolled_access_logs(folder)
        gone += _delete([p for p in old if _mtime(p) < cutoff])
    return gone


def _expire_runs(runs: Path, cutoff: float) -> list[Path]:
    """Delete the runs last written before ``cutoff``, and the rolled access logs older
    than it in those kept."""
    gone: list[Path] = []
    for run in _subfolders(runs):
        if _run_time(run) < cutoff:
            shutil.rmtree(run, ignore_errors=True)
            gone.append(run)
        else:
            old = [p for p in _rolled_access_logs(run / ALB) if _mtime(p) < cutoff]
            gone += _delete(old)
    return gone


def _rolled_access_logs(alb: Path) -> list[Path]:
    """``<alb>/<load balancer>/access.log.<n>``: not the live ``access.log``."""
    if alb.is_symlink():
        return []
    return [p for lb in _subfolders(alb) for p in lb.iterdir() if _is_rolled_access_log(p)]


def _is_rolled_access_log(path: Path) -> bool:
    name, _, index = path.name.rpartition(".")
    return name == ACCESS_LOG and index.isdigit() and path.is_file() and not path.is_symlink()


def _subfolders(folder: Path) -> list[Path]:
    """The folders in ``folder``; not symlinks, which may lead out of the logs."""
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()]


def _delete(paths: list[Path]) -> list[Path]:
    for path in paths:
        path.unlink(missing_ok=True)
    return paths


def _is_task_log(path: Path) -> bool:
    """``<task>.log`` or a rotated ``<task>.log.<n>``."""
    stem, _, index = path.name.rpartition(".log.")
    return path.is_file() and (path.suffix == ".log" or (bool(stem) and index.isdigit()))


def _run_time(run: Path) -> float:
    """When a run's logs were last written: its name says (`archive_previous_run`)."""
    try:
        return datetime.strptime(run.name, RUN_NAME).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return _mtime(run)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return float("inf")  # gone meanwhile: nothing to delete


def _newest_change(folder: Path) -> float:
    times = [p.stat().st_mtime for p in folder.iterdir()] or [folder.stat().st_mtime]
    return max(times)


def _prune(runs: Path, *, keep: int, retention_days: int) -> None:
    if not runs.is_dir():
        return
    ordered = sorted((p for p in runs.iterdir() if p.is_dir()), key=lambda p: p.name)
    too_old = time.time() - retention_days * 86400
    for index, run in enumerate(ordered):
        if index < len(ordered) - keep or _run_time(run) < too_old:
            shutil.rmtree(run, ignore_errors=True)
