"""``fargo up / status / logs / down``: the twin's command-line side."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fargo.local import state
from fargo.local.control import ControlClient, ControlPlaneUnavailable
from fargo.spec import defaults, load_spec

if TYPE_CHECKING:
    from fargo.local.runtime import Runtime

DEFAULT_STATE_DIR = Path(".fargo")
DEFAULT_TIME_SCALE = defaults.LOCAL_TIME_SCALE
DETACH_TIMEOUT_SECONDS = 120.0
DOWN_TIMEOUT_SECONDS = 60.0


def add_commands(commands: Any, spec_option: Any) -> None:
    up = commands.add_parser("up", help="run the architecture on this machine (the local twin)")
    spec_option(up)
    _state_option(up)
    up.add_argument(
        "--detach", "-d", action="store_true", help="return once every service is healthy"
    )
    timing = up.add_mutually_exclusive_group()
    timing.add_argument("--aws-timings", action="store_true", help="health checks at AWS speed")
    timing.add_argument(
        "--time-scale",
        type=float,
        default=DEFAULT_TIME_SCALE,
        help=f"health-check clock multiplier (default {DEFAULT_TIME_SCALE})",
    )
    up.set_defaults(handler=up_command)

    status = commands.add_parser("status", help="services, tasks, load balancers, discovery")
    _state_option(status)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=status_command)

    logs = commands.add_parser("logs", help="task logs, prefixed by task id")
    _state_option(logs)
    logs.add_argument("service", nargs="?", help="only this service's tasks")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs.set_defaults(handler=logs_command)

    demo = commands.add_parser(
        "demo", help="check the seven demonstration points on the running twin"
    )
    spec_option(demo)
    _state_option(demo)
    demo.add_argument("--json", action="store_true", help="machine-readable output")
    demo.add_argument(
        "--calls", type=int, default=20, help="calls per balancing check (default 20)"
    )
    demo.set_defaults(handler=demo_command)

    update = commands.add_parser(
        "update-service", help="roll a service onto its image built from the current sources"
    )
    _state_option(update)
    update.add_argument("service", help="the service to deploy again")
    update.set_defaults(handler=update_service_command)

    down = commands.add_parser("down", help="stop everything the twin started")
    _state_option(down)
    down.set_defaults(handler=down_command)


def _state_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help=f"the twin's state folder (default {DEFAULT_STATE_DIR})",
    )


def up_command(args: argparse.Namespace) -> int:
    from fargo.local.daemon import AlreadyRunning, serve, stamp

    load_spec(args.file)  # a spec error stops `up` before anything starts
    state_dir = args.state_dir.resolve()
    time_scale = 1.0 if args.aws_timings else args.time_scale
    if time_scale <= 0:
        print("fargo up: --time-scale must be above 0", file=sys.stderr)
        return 2
    if args.detach:
        return _up_detached(args.file, state_dir, time_scale)

    def ready(runtime: Runtime) -> None:
        print(render_endpoints(runtime.describe()), flush=True)
        print(stamp("ready; Ctrl-C stops everything"), flush=True)

    try:
        return asyncio.run(serve(args.file, state_dir, time_scale=time_scale, on_ready=ready))
    except AlreadyRunning as err:
        print(f"fargo up: {err}", file=sys.stderr)
        return 1


def _up_detached(spec_path: Path, state_dir: Path, time_scale: float) -> int:
    if (running := state.control_plane(state_dir)) is not None:
        print(
            f"fargo up: a twin is already up for {state_dir} (control plane pid {running.pid}); "
            "run `fargo down` first",
            file=sys.stderr,
        )
        return 1
    state.prepare(state_dir)
    log_path = state_dir / "logs" / "control-plane.log"
    argv = [
        sys.executable,
        "-m",
        "fargo.local.daemon",
        "--spec",
        str(spec_path.resolve()),
        "--state-dir",
        str(state_dir),
        "--time-scale",
        str(time_scale),
    ]
    with log_path.open("ab") as log:
        daemon = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    from fargo.local.ecs import log_tail

    client = ControlClient(state.control_socket(state_dir))
    deadline = time.monotonic() + DETACH_TIMEOUT_SECONDS
    answer: dict[str, Any] = {"waiting": ["control plane"]}
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            print("fargo up: the twin did not start:", file=sys.stderr)
            print("\n".join(f"  {line}" for line in log_tail(log_path, 20)), file=sys.stderr)
            return 1
        try:
            answer = asyncio.run(client.get("/ready"))
        except ControlPlaneUnavailable:
            time.sleep(0.05)
            continue
        if answer["ready"]:
            print(render_endpoints(asyncio.run(client.get("/status"))))
            return 0
        if answer["failure"]:
            print(f"fargo up: giving up: {answer['failure']}", file=sys.stderr)
            _stop(state_dir, state.control_plane(state_dir))
            return 1
        time.sleep(0.05)
    print(
        f"fargo up: not healthy after {DETACH_TIMEOUT_SECONDS:.0f} s; waiting for: "
        f"{', '.join(answer.get('waiting', []))}",
        file=sys.stderr,
    )
    _stop(state_dir, state.control_plane(state_dir))
    return 1


def down_command(args: argparse.Namespace) -> int:
    state_dir = args.state_dir.resolve()
    if not state_dir.exists():
        print(f"nothing is running ({state_dir} does not exist)")
        return 0
    record = state.control_plane(state_dir)
    stopped = _stop(state_dir, record)
    if record is None and not stopped:
        print("nothing is running")
    else:
        print(
            f"stopped the twin in {state_dir}"
            + (f"; also stopped {', '.join(stopped)}" if stopped else "")
        )
    return 0


def _stop(state_dir: Path, control: state.ProcessRecord | None) -> list[str]:
    """Ask the control plane to stop and wait for it to exit; then stop any recorded leftover."""
    if control is not None:
        client = ControlClient(state.control_socket(state_dir))
        with contextlib.suppress(ControlPlaneUnavailable):
            asyncio.run(client.post("/down"))
        deadline = time.monotonic() + DOWN_TIMEOUT_SECONDS
        while time.monotonic() < deadline and control.alive():
            time.sleep(0.05)
    return state.sweep(state_dir)


def status_command(args: argparse.Namespace) -> int:
    client = ControlClient(state.control_socket(args.state_dir.resolve()))
    try:
        data = asyncio.run(client.get("/status"))
    except ControlPlaneUnavailable:
        print("the twin is not running (start it with `fargo up`)", file=sys.stderr)
        return 1
    print(json.dumps(data, indent=2) if args.json else render_status(data))
    return 0


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


def render_endpoints(data: dict[str, Any]) -> str:
    endpoints = data["endpoints"]
    lines = [f"the twin is up (state in {data['state_dir']}):"]
    for name, urls in endpoints["load_balancers"].items():
        dns = endpoints["load_balancer_dns_names"].get(name, "")
        lines.append(f"  load balancer {name:<10} {'  '.join(urls)}   ({dns})")
    lines.append(f"  discovery DNS server     {endpoints['discovery_dns_server']} (UDP and TCP)")
    lines.append(f"  CA certificate           {endpoints['ca_certificate']}")
    if data.get("ready_after_seconds") is not None:
        lines.append(f"  every target healthy after {data['ready_after_seconds']:.2f} s")
    return "\n".join(lines)


def render_status(data: dict[str, Any]) -> str:
    lines = [render_endpoints(data), "", "services:"]
    lines.append(f"  {'SERVICE':<28}{'DESIRED':>8}{'RUNNING':>8}{'HEALTHY':>8}{'RESTARTS':>9}")
    for svc in data["services"]:
        lines.append(
            f"  {svc['name']:<28}{svc['desired']:>8}{svc['running']:>8}{svc['healthy']:>8}"
            f"{svc['restarts']:>9}"
        )
        if svc.get("failure"):
            lines.append(f"    failing: {svc['failure']}")
    lines += ["", "tasks:", f"  {'TASK':<34}{'SERVICE':<26}{'ADDRESS':<19}{'STATUS':<10}HEALTH"]
    for svc in data["services"]:
        for task in svc["tasks"]:
            lines.append(
                f"  {task['id']:<34}{svc['name']:<26}{task['address']:<19}"
                f"{task['last_status']:<10}{task['health']}"
            )
    lines += ["", "load balancers:"]
    lines.append(json.dumps(data["load_balancers"], indent=2).replace("\n", "\n  "))
    lines += ["", "discovery:"]
    for service in data["discovery"]:
        lines.append(f"  {service['name']} (TTL {service['ttl']}, {service['routing_policy']})")
        for instance in service["instances"]:
            lines.append(
                f"    {instance['id']}  {instance['ipv4']}:{instance['port']}  {instance['health']}"
            )
    return "\n".join(lines)


def demo_command(args: argparse.Namespace) -> int:
    from fargo.local.demo import as_json, render, run_demo

    spec = load_spec(args.file)
    client = ControlClient(state.control_socket(args.state_dir.resolve()))
    try:
        status = asyncio.run(client.get("/status"))
    except ControlPlaneUnavailable:
        print("the twin is not running (start it with `fargo up --detach`)", file=sys.stderr)
        return 1
    points = asyncio.run(run_demo(spec, status, calls=args.calls))
    print(json.dumps(as_json(points), indent=2) if args.json else render(points))
    return 0 if all(p.status != "fail" for p in points) else 1


def update_service_command(args: argparse.Namespace) -> int:
    client = ControlClient(state.control_socket(args.state_dir.resolve()), timeout=600)
    try:
        result = asyncio.run(client.post(f"/deployments/{args.service}", timeout=600))
    except ControlPlaneUnavailable as err:
        print(f"fargo update-service: {err}", file=sys.stderr)
        return 1
    verdict = "completed" if result["completed"] else "rolled back"
    print(
        f"deployment of {args.service} revision {result['revision']} ({result['image']}) {verdict}"
    )
    for event in result["events"][-4:]:
        print(f"  {event}")
    return 0 if result["completed"] else 1
