"""``fargo logs``: every task's log lines, prefixed by ``service/task-id``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def logs_command(args: argparse.Namespace) -> int:
    log_dir = args.state_dir.resolve() / "logs"
    if args.service:
        folders = [log_dir / args.service]
        if not folders[0].is_dir():
            known = (
                sorted(p.name for p in log_dir.iterdir() if p.is_dir()) if log_dir.is_dir() else []
            )
            listed = ", ".join(known) or "none"
            print(
                f"fargo logs: no logs for service {args.service!r}; known: {listed}",
                file=sys.stderr,
            )
            return 1
    else:
        folders = sorted(p for p in log_dir.iterdir() if p.is_dir()) if log_dir.is_dir() else []
    offsets: dict[Path, int] = {}
    try:
        while True:
            for folder in folders:
                for path in sorted(folder.glob("*.log"), key=lambda p: p.stat().st_mtime):
                    offsets[path] = _print_new(path, offsets.get(path, 0), folder.name)
            if not args.follow:
                return 0
            time.sleep(0.2)
    except KeyboardInterrupt:
        return 0


def _print_new(path: Path, offset: int, service: str) -> int:
    with path.open("rb") as handle:
        handle.seek(offset)
        data = handle.read()
    complete = data[: data.rfind(b"\n") + 1]
    prefix = f"{service}/{path.stem[:8]}"
    for line in complete.decode("utf-8", "replace").splitlines():
        print(f"{prefix} | {line}")
    return offset + len(complete)
