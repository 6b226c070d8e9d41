"""``fargo top``: the twin's metrics, live — services' CPU and memory, target groups'
requests, status codes, response times and healthy hosts, load balancers' own answers,
tasks' CPU and memory (`fargo.local.cli.metrics_view`).

On a terminal the tables are redrawn every period until Ctrl-C; piped (or with
``--once``) they are printed once, plain.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime

from fargo.local.cli.metrics_view import render_metrics
from fargo.local.control.client import ControlClient, ControlError
from fargo.local.state import folder as state
from fargo.local.status import MetricsStatus

CLEAR = "\x1b[H\x1b[2J"


def top_command(args: argparse.Namespace) -> int:
    client = ControlClient(state.control_socket(args.state_dir.resolve()))
    live = sys.stdout.isatty() and not args.once
    try:
        while True:
            metrics = asyncio.run(client.metrics())
            text = "\n".join(render(metrics, now=datetime.now(UTC)))
            print(CLEAR + text if live else text, flush=True)
            if not live:
                return 0
            time.sleep(metrics.period_seconds)
    except ControlError as err:
        print(f"fargo top: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


def render(metrics: MetricsStatus, *, now: datetime) -> list[str]:
    period = metrics.period_seconds
    head = f"fargo top — {now:%H:%M:%S} UTC, one datapoint per {period:g} s"
    head += " (CloudWatch's 60 s on the twin's clock)"
    return [head, "", *render_metrics(metrics)]
