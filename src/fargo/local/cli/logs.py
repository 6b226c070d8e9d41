"""``fargo logs``: the tasks' log lines, in time order, prefixed by ``service/task``.

Without ``--previous``, the tasks running now (as the control plane says; if none
answers, every task of the last run). ``--tail N`` keeps the last N lines, ``--since``
starts at a time or a duration ago, ``--timestamps`` prints full UTC times instead of
the local time of day, ``--no-health-checks`` hides the load balancers' health checks
and the container health checks (lines that name the user agent they send:
``ELB-HealthChecker``, as ALB's, or ``fargo-container-health-check``), and
``--follow`` keeps printing new lines, of new tasks too. Earlier runs' logs are in
``logs/runs/`` (`fargo.local.logs.runs`), not shown.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections import deque
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from fargo.local.control.client import ControlClient, ControlError
from fargo.local.logs.health_checks import checked, is_health_check
from fargo.local.logs.render import LinePrinter, use_colour
from fargo.local.logs.streams import (
    Follower,
    LogStream,
    StreamEvent,
    find_streams,
    merged,
    parse_since,
)
from fargo.local.state import folder as state

if TYPE_CHECKING:
    from fargo.local.status import TwinStatus

FOLLOW_POLL_SECONDS = 0.2


def logs_command(args: argparse.Namespace) -> int:
    state_dir = args.state_dir.resolve()
    logs = state_dir / "logs"
    try:
        since = parse_since(args.since, datetime.now(UTC)) if args.since else None
    except ValueError as err:
        print(f"fargo logs: --since: {err}", file=sys.stderr)
        return 2
    if args.tail is not None and args.tail < 0:
        print("fargo logs: --tail takes 0 or more lines", file=sys.stderr)
        return 2
    status = _status(state_dir)
    current = None if status is None else _current_tasks(status)
    paths = {} if status is None else _health_check_paths(status)
    services = {args.service} if args.service else None
    streams = find_streams(logs, services)
    if args.service and not streams:
        known = sorted({s.service for s in find_streams(logs)})
        listed = ", ".join(known) or "none"
        print(f"fargo logs: no logs for service {args.service!r}; known: {listed}", file=sys.stderr)
        return 1
    if current is None:
        print("fargo logs: the twin is not running: the last run's logs", file=sys.stderr)

    def wanted(stream: LogStream) -> bool:
        return args.previous or current is None or stream.task_id in current

    shown = [s for s in streams if wanted(s)]
    printer = LinePrinter(
        colour=use_colour(sys.stdout),
        timestamps="full" if args.timestamps else "short",
        width=max((len(s.label) for s in streams), default=0),
    )
    events: Iterable[StreamEvent] = merged(shown, since=since)
    if args.no_health_checks:
        events = (
            e for e in events if not is_health_check(e.message, paths.get(e.stream.service, ()))
        )
    if args.tail is not None:
        events = deque(events, maxlen=args.tail)
    for event in events:
        print(_line(printer, event))
    if not args.follow:
        return 0
    with contextlib.suppress(KeyboardInterrupt):
        _follow(logs, services, printer, paths if args.no_health_checks else None)
    return 0


def _line(printer: LinePrinter, event: StreamEvent) -> str:
    stream = event.stream
    return printer.format(stream.service, stream.label, event.timestamp, event.message)


def _status(state_dir: Path) -> TwinStatus | None:
    """The running twin's status; None when it is not running."""
    try:
        return asyncio.run(ControlClient(state.control_socket(state_dir), timeout=3).status())
    except ControlError:
        return None


def _current_tasks(status: TwinStatus) -> set[str]:
    """The ids of the tasks the control plane knows now (running or stopping)."""
    return {task.id for service in status.services for task in service.tasks}


def _health_check_paths(status: TwinStatus) -> dict[str, frozenset[str]]:
    """Each service's health-check paths: those of the target groups its tasks are in."""
    service_of = {task.id: service.name for service in status.services for task in service.tasks}
    paths: dict[str, set[str]] = {}
    for group in status.load_balancers.target_groups.values():
        for target in group.targets:
            if target.id in service_of:
                paths.setdefault(service_of[target.id], set()).add(group.health_check.path)
    return {service: checked(found) for service, found in paths.items()}


def _follow(
    logs: Path,
    services: set[str] | None,
    printer: LinePrinter,
    hidden: Mapping[str, Collection[str]] | None,
) -> None:
    """Print new lines as they come; ``hidden``: health checks are left out, known also by
    each service's health-check paths (None: every line is shown)."""
    follower = Follower(logs, services)
    while True:
        for event in follower.poll():
            paths = () if hidden is None else hidden.get(event.stream.service, ())
            if hidden is not None and is_health_check(event.message, paths):
                continue
            print(_line(printer, event), flush=True)
        time.sleep(FOLLOW_POLL_SECONDS)
