"""``fargo events [-f] [--service S] [--json]``: the control plane's events, newest last.

Task starts and stops with their reasons, target health transitions, deployments, the
circuit breaker, data plane restarts — as ECS's service events show them, read from the
state folder's ``events.jsonl``, so they are there after the control plane has gone.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

from fargo.local.events import EVENTS_FILE, Event, event_files, parse_events

FOLLOW_POLL_SECONDS = 0.2


def events_command(args: argparse.Namespace) -> int:
    state_dir: Path = args.state_dir.resolve()
    if not event_files(state_dir) and not args.follow:
        print(
            f"fargo events: no events in {state_dir / EVENTS_FILE}; has `fargo up` run "
            "with this --state-dir?",
            file=sys.stderr,
        )
        return 1
    try:
        offsets = {path: _show(path, 0, args) for path in event_files(state_dir)}
        while args.follow:
            time.sleep(FOLLOW_POLL_SECONDS)
            current = state_dir / EVENTS_FILE
            if current.exists() and current.stat().st_size < offsets.get(current, 0):
                offsets[current] = 0  # rotated: the new file starts from its beginning
            if current.exists():
                offsets[current] = _show(current, offsets.get(current, 0), args)
    except KeyboardInterrupt:
        return 0
    return 0


def _show(path: Path, offset: int, args: argparse.Namespace) -> int:
    """Print the complete lines of ``path`` after ``offset``; the new offset."""
    with path.open("rb") as handle:
        handle.seek(offset)
        data = handle.read()
    complete = data[: data.rfind(b"\n") + 1]
    for event in parse_events(iter(complete.decode("utf-8", "replace").splitlines())):
        if args.service in (None, event.subject):
            print(_render(event, as_json=args.json), flush=True)
    return offset + len(complete)


def _render(event: Event, *, as_json: bool) -> str:
    return json.dumps(asdict(event)) if as_json else event.render()
