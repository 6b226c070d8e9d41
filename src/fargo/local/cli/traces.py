"""``fargo traces [TRACE_ID] [--service S] [--slow 100ms] [--json]``: the X-Ray traces the
running twin kept.

Without a trace id, one line per recent trace (newest first): when, how long, the entry
request and its answer, the services it crossed. With one, the trace's spans as a text
waterfall: each span indented under its caller, a bar where it ran on the trace's time
line, its duration, and for the load balancers and discovery their own time (a load
balancer's, with the target it chose, from its access-log entry; ``*``: inferred, see
`fargo.local.xray.service_graph`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from fargo.local.control.client import ControlClient, ControlError, ControlPlaneErrorAnswer
from fargo.local.state import folder as state

BAR_WIDTH = 40
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*$")


def parse_slow(value: str) -> float:
    """``--slow``: ``100ms``, ``1.5s`` or a bare number of milliseconds → milliseconds."""
    match = DURATION.match(value)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{value!r}: expected a duration such as 100ms or 1.5s (a bare number: milliseconds)"
        )
    number, unit = float(match.group(1)), match.group(2) or "ms"
    return number * 1000.0 if unit == "s" else number


def traces_command(args: argparse.Namespace) -> int:
    state_dir = args.state_dir.resolve()
    client = ControlClient(state.control_socket(state_dir))
    try:
        if args.trace_id:
            answer = asyncio.run(client.get(f"/traces/{quote(args.trace_id, safe='')}"))
        else:
            query: dict[str, Any] = {"slow_ms": args.slow, "limit": args.limit}
            if args.service:
                query["service"] = args.service
            answer = asyncio.run(client.get(f"/traces?{urlencode(query)}"))
    except ControlPlaneErrorAnswer as err:
        print(f"fargo traces: {err.text}", file=sys.stderr)
        return 1
    except ControlError as err:
        print(
            f"fargo traces: no twin answers in {state_dir} ({err}); start one with `fargo up -d`",
            file=sys.stderr,
        )
        return 1
    if args.json:
        print(json.dumps(answer, indent=2))
    elif args.trace_id:
        print(render_waterfall(answer))
    else:
        print(render_list(answer))
    return 0


def render_list(answer: dict[str, Any]) -> str:
    """The ``fargo traces`` table."""
    traces = answer["traces"]
    if not traces:
        if answer.get("tracing") != "xray":
            return "no traces: the spec has no `tracing: xray`, so the services send none"
        return (
            f"no traces match ({answer.get('kept', 0)} kept); the services sample X-Ray's "
            "default way: the first request each second, then 5 % of the others"
        )
    lines = [f"{'TIME':<12} {'TRACE ID':<35} {'DURATION':>10} {'STATUS':>6}  REQUEST  SERVICES"]
    for trace in traces:
        when = datetime.fromtimestamp(trace["start_time"], UTC).strftime("%H:%M:%S.%f")[:12]
        status = "-" if trace["status"] is None else str(trace["status"])
        lines.append(
            f"{when:<12} {trace['trace_id']:<35} {trace['duration_ms']:>8.1f}ms {status:>6}  "
            f"{trace['request'] or '?'}  {', '.join(trace['services'])}"
        )
    return "\n".join(lines)


def render_waterfall(trace: dict[str, Any]) -> str:
    """One trace's spans: indented tree, a bar on the time line, duration and own time."""
    spans = trace["spans"]
    by_id = {span["id"]: span for span in spans}
    start = min(span["start_time"] for span in spans)
    end = max(span["end_time"] for span in spans)
    total = max(end - start, 1e-9)
    depth: dict[str, int] = {}
    for span in spans:  # parents come first
        parent = span["parent_id"]
        depth[span["id"]] = depth.get(parent, -1) + 1 if parent in by_id else 0
    labels = [("  " * depth[s["id"]]) + _label(s) for s in spans]
    width = max(len(label) for label in labels)
    lines = [
        f"trace {trace['trace_id']}  {trace['request'] or ''}  {trace['duration_ms']:.1f} ms",
    ]
    for span, label in zip(spans, labels, strict=True):
        left = round((span["start_time"] - start) / total * BAR_WIDTH)
        length = max(round((span["end_time"] - span["start_time"]) / total * BAR_WIDTH), 1)
        bar = " " * left + "█" * min(length, BAR_WIDTH - left)
        status = "" if span["status"] is None else f" {span['status']}"
        own = "" if span["own_ms"] is None else f"  (own {span['own_ms']:.2f} ms)"
        if span.get("target"):
            own += f"  → {span['target']}"
        lines.append(
            f"{label:<{width}}  |{bar:<{BAR_WIDTH}}| {span['duration_ms']:8.2f} ms{status}{own}"
        )
    lines.append(
        "(* inferred: discovery, and a load balancer whose access-log entry has not come;"
        " see docs/twin.md)"
    )
    return "\n".join(lines)


def _label(span: dict[str, Any]) -> str:
    kind = span["kind"]
    if kind == "call":
        return f"→ {span['name']}"
    if kind == "load_balancer":
        return f"{span['name']} (load balancer){'*' if span['inferred'] else ''}"
    if kind == "discovery":
        return f"{span['name']} (Cloud Map)*"
    if kind == "client":
        return "client"
    return str(span["name"])
