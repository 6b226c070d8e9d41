"""The twin's commands as `fargo` parses them: ``build``, ``up``, ``status``, ``ps``, ``top``,
``events``, ``traces``, ``exec``, ``logs``, ``demo``, ``scale``, ``restart``, ``update-service``,
``down``.

Each has examples in its ``--help``. Short options mean one thing everywhere: ``-f`` is
the spec file (``--follow`` has no short form), ``-d`` detaches, ``-s`` names a service.

Only the parsers live here; each handler is imported when its command runs, so
``fargo validate`` or ``fargo --help`` does not load the twin (aiohttp, dnspython, …).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fargo.help import examples
from fargo.local.cli.options import add_runtime_options

DEFAULT_STATE_DIR = Path(".fargo")

Handler = Callable[[argparse.Namespace], int]


def _lazy(module: str, function: str) -> Handler:
    """The handler ``fargo.local.cli.<module>.<function>``, imported when it runs."""

    def run(args: argparse.Namespace) -> int:
        handler: Handler = getattr(importlib.import_module(f"fargo.local.cli.{module}"), function)
        return handler(args)

    return run


def add_commands(commands: Any, spec_option: Any) -> None:
    up = commands.add_parser(
        "up",
        help="run the architecture on this machine (the local twin); on a running twin, "
        "apply the spec's changes",
        **examples(
            "fargo up                       # foreground; Ctrl-C stops everything",
            "fargo up -d                    # return once every service is healthy",
            "fargo up                       # twin running: apply what changed in the spec",
            "fargo up -f shop.yaml --state-dir .fargo-shop --network loopback",
            "fargo up -d --publish 443:8443 # the public HTTPS listener on port 8443",
            "fargo up --watch               # every saved change deployed",
            "fargo up                       # on a running twin: the spec applied as a diff",
        ),
    )
    spec_option(up)
    _state_option(up)
    up.add_argument(
        "--detach", "-d", action="store_true", help="return once every service is healthy"
    )
    up.add_argument(
        "--watch",
        action="store_true",
        help="then deploy each saved change (an image's build context: its services roll; "
        "the spec: applied as a diff) until Ctrl-C; with -d the twin keeps running after",
    )
    add_runtime_options(up)
    up.set_defaults(handler=_lazy("commands", "up_command"))

    status = commands.add_parser(
        "status",
        help="services, tasks, load balancers, discovery",
        **examples("fargo status", "fargo status --json | jq '.services[].healthy'"),
    )
    _state_option(status)
    output = status.add_mutually_exclusive_group()
    output.add_argument(
        "--json", action="store_true", help="machine-readable output (see docs/status.md)"
    )
    output.add_argument(
        "--json-schema",
        action="store_true",
        help="print the JSON Schema of `--json`'s output (no twin needed)",
    )
    status.set_defaults(handler=_lazy("commands", "status_command"))

    watch = commands.add_parser(
        "watch",
        help="deploy each saved change to the running twin (images roll, the spec applies)",
        **examples("fargo watch", "fargo watch -f shop.yaml --state-dir .fargo-shop"),
    )
    spec_option(watch)
    _state_option(watch)
    watch.set_defaults(handler=_lazy("watch", "watch_command"))

    ps = commands.add_parser(
        "ps",
        help="one line per task: address, zone, state, health, uptime, CPU, memory",
        **examples("fargo ps", "fargo ps -s backend-private"),
    )
    _state_option(ps)
    ps.add_argument("--service", "-s", help="only this service's tasks")
    ps.set_defaults(handler=_lazy("ps", "ps_command"))

    top = commands.add_parser(
        "top",
        help="live metrics: services' CPU and memory, target groups' requests, codes, "
        "latency percentiles and healthy hosts (CloudWatch's names)",
        **examples("fargo top", "fargo top --once | grep backend-private"),
    )
    _state_option(top)
    top.add_argument("--once", action="store_true", help="print the tables once and exit")
    top.set_defaults(handler=_lazy("top", "top_command"))

    _add_events_command(commands)
    _add_traces_command(commands)
    _add_exec_command(commands)

    logs = commands.add_parser(
        "logs",
        help="task logs in time order, prefixed by service and task id",
        **examples(
            "fargo logs",
            "fargo logs backend-public --follow --no-health-checks",
            "fargo logs --since 10m --tail 50 --timestamps",
            "fargo logs backend-private --previous   # stopped tasks of this run too",
        ),
    )
    _state_option(logs)
    logs.add_argument("service", nargs="?", help="only this service's tasks")
    logs.add_argument("--follow", action="store_true", help="keep printing new lines")
    logs.add_argument("--tail", type=int, metavar="N", help="only the last N lines")
    logs.add_argument(
        "--since", metavar="WHEN", help="from a time (2026-12-03T04:00:00Z) or a duration ago (10m)"
    )
    logs.add_argument(
        "--timestamps", action="store_true", help="full UTC times instead of the time of day"
    )
    logs.add_argument("--previous", action="store_true", help="stopped tasks of this run too")
    logs.add_argument(
        "--no-health-checks",
        action="store_true",
        help="hide the health checks of load balancers and containers (lines naming their "
        "user agents, ELB-HealthChecker or fargo-container-health-check)",
    )
    logs.set_defaults(handler=_lazy("logs", "logs_command"))

    demo = commands.add_parser(
        "demo",
        help="check the seven demonstration points on the running twin (or, with --cloud, "
        "on the system `fargo deploy` deployed)",
        **examples("fargo demo", "fargo demo --json --calls 50", "fargo demo --cloud"),
    )
    spec_option(demo)
    _state_option(demo)
    demo.add_argument(
        "--cloud",
        action="store_true",
        help="check the deployed system in AWS (the app stack's outputs, read-only AWS calls)",
    )
    demo.add_argument("--json", action="store_true", help="machine-readable output")
    demo.add_argument(
        "--calls", type=int, default=20, help="calls per balancing check (default 20)"
    )
    demo.set_defaults(handler=_lazy("commands", "demo_command"))

    scale = commands.add_parser(
        "scale",
        help="set a service's desired count and wait until it is stable",
        **examples("fargo scale backend-private 4", "fargo scale frontend 0 --no-wait"),
    )
    _state_option(scale)
    scale.add_argument("service", help="the ECS service, as in the spec")
    scale.add_argument("count", type=int, help="the desired count (0 to 1000)")
    scale.add_argument(
        "--no-wait", action="store_true", help="return once the count is set, not once stable"
    )
    scale.add_argument(
        "--timeout",
        type=float,
        default=180.0,
        help="seconds to wait for the service to be stable (default 180)",
    )
    scale.set_defaults(handler=_lazy("services", "scale_command"))

    restart = commands.add_parser(
        "restart",
        help="replace every task of a service, rolling, on the image it runs",
        **examples("fargo restart backend-public"),
    )
    _state_option(restart)
    restart.add_argument("service", help="the ECS service, as in the spec")
    restart.set_defaults(handler=_lazy("services", "restart_command"))

    build = commands.add_parser(
        "build",
        help="build images from their Dockerfiles as the twin runs them",
        description="Build the spec's images (each in its own Python environment) without "
        "starting the twin. NAME is an image or a service (its image); none: every image. "
        "What the twin does not honour of a Dockerfile is printed with its file and line.",
        **examples(
            "fargo build                     # every image of the spec",
            "fargo build backend-private     # a service's image (or an image by its name)",
            "fargo build -f shop.yaml --state-dir .fargo-shop",
        ),
    )
    spec_option(build)
    _state_option(build)
    build.add_argument("names", nargs="*", metavar="NAME", help="images or services")
    build.set_defaults(handler=_lazy("build", "build_command"))

    update = commands.add_parser(
        "update-service",
        help="roll a service onto its image built from the current sources",
        **examples("fargo update-service backend-private"),
    )
    _state_option(update)
    update.add_argument("service", help="the service to deploy again")
    update.set_defaults(handler=_lazy("commands", "update_service_command"))

    down = commands.add_parser(
        "down",
        help="stop everything the twin started",
        **examples("fargo down", "fargo down --state-dir .fargo-shop"),
    )
    _state_option(down)
    down.set_defaults(handler=_lazy("commands", "down_command"))


def _state_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help=f"the twin's state folder (default {DEFAULT_STATE_DIR})",
    )


def _add_events_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    events = commands.add_parser(
        "events",
        help="the control plane's events (tasks, target health, deployments)",
        **examples("fargo events", "fargo events -s backend-private --follow"),
    )
    _state_option(events)
    events.add_argument("--service", "-s", help="only events about this service (or group)")
    events.add_argument("--follow", action="store_true", help="keep printing new events")
    events.add_argument("--json", action="store_true", help="one JSON object per line")
    events.set_defaults(handler=_lazy("events", "events_command"))


def _add_traces_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    traces = commands.add_parser(
        "traces",
        help="recent X-Ray traces (spec: tracing: xray), or one trace as a waterfall",
        **examples(
            "fargo traces",
            "fargo traces -s backend-private --slow 100ms",
            "fargo traces 1-6b110d32-6c2b0b7f6423248413387b8e   # its spans, as a waterfall",
        ),
    )
    _state_option(traces)
    traces.add_argument("trace_id", nargs="?", metavar="TRACE_ID", help="show this trace")
    traces.add_argument("--service", "-s", help="only traces through this service")
    traces.add_argument(
        "--slow",
        type=_slow,
        default=0.0,
        metavar="DURATION",
        help="only traces at least this long (100ms, 1.5s)",
    )
    traces.add_argument("--limit", type=int, default=20, metavar="N", help="at most N traces")
    traces.add_argument("--json", action="store_true", help="the control plane's JSON answer")
    traces.set_defaults(handler=_lazy("traces", "traces_command"))


def _slow(value: str) -> float:
    from fargo.local.cli.traces import parse_slow

    return parse_slow(value)


def _add_exec_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "exec",
        usage="fargo exec [-h] [--state-dir DIR] [--task ID] SERVICE [--] COMMAND [ARG ...]",
        help="run a command inside a running task (ECS Exec)",
        description="Run COMMAND inside a running task of SERVICE, with the task's "
        "environment and working directory. VPC mode: in the task's network and mount "
        "namespaces (its address, security groups, /etc/resolv.conf). Loopback mode: tasks "
        "have no namespaces, so the command runs as a plain process on this machine with "
        "the task's environment and working directory. The exit status is the command's.",
        **examples(
            "fargo exec backend-public -- getent hosts private.backend.microservice.local",
            "fargo exec --task 3f9c backend-private -- sh",
        ),
    )
    _state_option(parser)
    parser.add_argument(
        "--task",
        metavar="ID",
        help="the task: its id or a unique prefix of it (default: the service's first "
        "RUNNING task)",
    )
    parser.add_argument("service", metavar="SERVICE", help="the ECS service, as in the spec")
    parser.add_argument(
        "command",
        metavar="COMMAND ...",
        nargs=argparse.REMAINDER,
        help="the command and its arguments (after --, so its options stay its own)",
    )
    parser.set_defaults(handler=_lazy("exec", "exec_command"), exec_parser=parser)
