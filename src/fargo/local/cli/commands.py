"""``fargo up / status / logs / down``: the twin's command-line side.

The parser and the handlers; `fargo status`'s text is drawn by `fargo.local.cli.status_view`,
`fargo logs` lives in `fargo.local.cli.logs`, stopping a twin in `fargo.local.control.stop`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fargo.local.cli.options import config_from_args
from fargo.local.cli.status_view import render_endpoints, render_status
from fargo.local.config import ConfigError, TwinConfig
from fargo.local.control.client import (
    ControlClient,
    ControlError,
    ControlPlaneErrorAnswer,
    ControlPlaneUnavailable,
)
from fargo.local.control.stop import control_plane_of, stop_twin
from fargo.local.ec2.modes import choose_network_mode, enter_network_mode
from fargo.local.logs.health_checks import health_check_paths, is_health_check
from fargo.local.logs.render import LinePrinter, use_colour
from fargo.local.state import folder as state
from fargo.local.status import Readiness
from fargo.local.status import json_schema as status_json_schema
from fargo.spec import check_spec, load_spec

if TYPE_CHECKING:
    from fargo.local.runtime import Runtime

DETACH_TIMEOUT_SECONDS = 120.0
READY_WAIT_SECONDS = 1.0  # each readiness question waits this long for the answer to change
TASK_OUTPUT_POLL_SECONDS = 0.2


def up_command(args: argparse.Namespace) -> int:
    from fargo.local.cli.apply import apply_spec, twin_running

    if twin_running(args.state_dir):
        # A twin runs on this state folder: apply the spec to it as a diff.
        applied = apply_spec(args.state_dir, sys.stdout, spec_path=args.file)
        if applied != 0 or not args.watch:
            return applied
        from fargo.local.cli.watch import Watcher

        return Watcher(args.file.resolve(), args.state_dir.resolve(), sys.stdout).run()

    # A spec error stops `up` before anything starts. What only the cloud refuses (no NAT
    # gateway, say) is a warning: the twin runs it, and shows how it would fail.
    for line in check_spec(args.file, world="twin").warning_lines():
        print(line, file=sys.stderr)
    try:
        config = choose_network_mode(
            config_from_args(args, spec_path=args.file, state_dir=args.state_dir)
        )
    except ConfigError as err:
        print(f"fargo up: {err}", file=sys.stderr)
        return 2
    if args.detach:
        # The control plane starts while the images build here: it takes each image
        # when built (or builds it, the other waiting on the image's lock).
        started = _up_detached(config, build=lambda: _build_images(config))
        if started != 0 or not args.watch:
            return started
        from fargo.local.cli.watch import Watcher

        return Watcher(args.file.resolve(), config.state_dir.resolve(), sys.stdout).run()
    if not _build_images(config):
        return 1
    from fargo.local.control.daemon import AlreadyRunning, serve, stamp

    enter_network_mode(config)  # before asyncio starts a thread
    task_output = TaskOutput(config.state_dir / "logs")
    watching = threading.Event()  # set: stop watching

    def watch() -> None:
        from fargo.local.cli.watch import Watcher

        Watcher(args.file.resolve(), config.state_dir.resolve(), sys.stdout).run(watching)

    def ready(runtime: Runtime) -> None:
        print(render_endpoints(runtime.describe()), flush=True)
        print(
            stamp(
                "ready; Ctrl-C stops everything. The tasks' output follows (health checks "
                "hidden: `fargo logs` has every line)"
            ),
            flush=True,
        )
        task_output.start(paths=lambda: health_check_paths(runtime.spec))
        if args.watch:
            threading.Thread(target=watch, name="watch", daemon=True).start()

    try:
        return asyncio.run(serve(config, on_ready=ready))
    except (AlreadyRunning, state.StateDirError) as err:
        print(f"fargo up: {err}", file=sys.stderr)
        return 1
    finally:
        watching.set()
        task_output.stop()


class TaskOutput:
    """A foreground ``fargo up``'s stream of the tasks' lines, interleaved as they come,
    prefixed by ``service/task`` (a colour per service on a terminal)."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.done = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self, paths: Callable[[], Mapping[str, Collection[str]]] = dict) -> None:
        """Stream from now on; ``paths``: each service's health-check paths, as the spec
        says them at the time (`health_check_paths`)."""
        from fargo.local.logs.streams import Follower

        follower = Follower(self.logs)
        printer = LinePrinter(colour=use_colour(sys.stdout))
        # Lines written before `ready` are the start-up's; the stream begins here.
        self.thread = threading.Thread(
            target=self._run, args=(follower, printer, paths), name="task output", daemon=True
        )
        self.thread.start()

    def _run(
        self,
        follower: Any,
        printer: LinePrinter,
        paths: Callable[[], Mapping[str, Collection[str]]],
    ) -> None:
        while not self.done.wait(TASK_OUTPUT_POLL_SECONDS):
            events = follower.poll()
            checked = paths() if events else {}
            for event in events:
                if not is_health_check(event.message, checked.get(event.stream.service, ())):
                    stream = event.stream
                    line = printer.format(
                        stream.service, stream.label, event.timestamp, event.message
                    )
                    print(line, flush=True)

    def stop(self) -> None:
        self.done.set()
        if self.thread is not None:
            self.thread.join(timeout=2)


def _build_images(config: TwinConfig) -> bool:
    """Build what is missing or stale before the twin starts, progress on stderr (the
    twin then finds every image up to date)."""
    from fargo.local.cli.build import build_images

    try:
        spec = load_spec(config.spec_path)
        return build_images(
            spec, config.spec_path, config.state_dir, [], sys.stderr, warn_when_up_to_date=False
        )
    except state.StateDirError as err:
        print(f"fargo up: {err}", file=sys.stderr)
        return False


def _stop_starting(state_dir: Path, pid: int) -> None:
    """Stop a control plane still starting (once it holds the folder, or has exited)."""
    deadline = time.monotonic() + DETACH_TIMEOUT_SECONDS
    while (code := exit_code(pid)) is None and state.lock_holder(state_dir) != pid:
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    if code is None:
        stop_twin(state_dir, control_plane_of(state_dir))


def _up_detached(config: TwinConfig, build: Callable[[], bool] = lambda: True) -> int:
    """Start the control plane in the background, ``build`` the images meanwhile, and
    wait until every target is healthy (or the start failed: nothing is left running)."""
    from fargo.local.control.detach import EXIT_ALREADY_RUNNING, fork_detached
    from fargo.local.state.files import log_tail

    state_dir = config.state_dir
    if state.locked(state_dir):
        print(
            f"fargo up: {state.StateLocked(state_dir, state.lock_holder(state_dir))}",
            file=sys.stderr,
        )
        return 1
    try:
        state.prepare(state_dir)
        log_path = state_dir / "logs" / "control-plane.log"
        pid = fork_detached(config, log_path)
    except (state.StateDirError, OSError) as err:
        print(f"fargo up: {err}", file=sys.stderr)
        return 1
    if not build():
        _stop_starting(state_dir, pid)
        return 1

    client = ControlClient(state.control_socket(state_dir))
    deadline = time.monotonic() + DETACH_TIMEOUT_SECONDS
    answer = Readiness(ready=False, waiting=["the control plane"])
    while time.monotonic() < deadline:
        if (code := exit_code(pid)) is not None:
            if code == EXIT_ALREADY_RUNNING:
                # Another `fargo up` took the folder between our check and the daemon's lock.
                holder = state.lock_holder(state_dir)
                print(f"fargo up: {state.StateLocked(state_dir, holder)}", file=sys.stderr)
                return 1
            print("fargo up: the twin did not start:", file=sys.stderr)
            print("\n".join(f"  {line}" for line in log_tail(log_path, 20)), file=sys.stderr)
            return 1
        if state.lock_holder(state_dir) != pid:
            time.sleep(0.05)  # not ours yet: the socket may be another control plane's
            continue
        try:
            # answered as soon as it is ready: no polling for both processes' CPU
            answer = asyncio.run(client.readiness(wait=READY_WAIT_SECONDS))
            if answer.ready:
                # what became of a crashed run's processes (`control.daemon`)
                with contextlib.suppress(OSError):
                    print((state_dir / state.PREVIOUS_RUN).read_text(), end="")
                print(render_endpoints(asyncio.run(client.status())))
                return 0
        except ControlPlaneUnavailable:
            time.sleep(0.05)
            continue
        except ControlPlaneErrorAnswer as err:
            print(f"fargo up: giving up, the control plane answered: {err}", file=sys.stderr)
            stop_twin(state_dir, control_plane_of(state_dir))
            return 1
        if answer.failure:
            print(f"fargo up: giving up: {answer.failure}", file=sys.stderr)
            stop_twin(state_dir, control_plane_of(state_dir))
            return 1
    print(
        f"fargo up: not healthy after {DETACH_TIMEOUT_SECONDS:.0f} s; waiting for: "
        f"{', '.join(answer.waiting)}",
        file=sys.stderr,
    )
    stop_twin(state_dir, control_plane_of(state_dir))
    return 1


def exit_code(pid: int) -> int | None:
    """The child's exit code once it has exited (reaping it), else None."""
    done, status = os.waitpid(pid, os.WNOHANG)
    return os.waitstatus_to_exitcode(status) if done else None


def down_command(args: argparse.Namespace) -> int:
    state_dir = args.state_dir.resolve()
    if not state_dir.exists():
        print(f"nothing is running ({state_dir} does not exist)")
        return 0
    if not state.is_state_dir(state_dir):
        print(
            f"fargo down: {state_dir} is not a fargo state folder (no {state.MARKER} in it); "
            "nothing done",
            file=sys.stderr,
        )
        return 1
    try:
        record = control_plane_of(state_dir)
        stopped = stop_twin(state_dir, record)
    except state.StateDirError as err:  # another user may write it: nothing is signalled
        print(f"fargo down: {err}", file=sys.stderr)
        return 1
    if record is None and not stopped:
        print("nothing is running")
    else:
        print(
            f"stopped the twin in {state_dir}"
            + (f"; also stopped {', '.join(stopped)}" if stopped else "")
        )
    return 0


def status_command(args: argparse.Namespace) -> int:
    if args.json_schema:
        print(json.dumps(status_json_schema(), indent=2))
        return 0
    state_dir = args.state_dir.resolve()
    try:
        status = asyncio.run(ControlClient(state.control_socket(state_dir)).status())
    except ControlError as err:
        print(_not_answering("status", state_dir, err), file=sys.stderr)
        return 1
    print(status.model_dump_json(indent=2) if args.json else render_status(status))
    return 0


def _not_answering(command: str, state_dir: Path, err: ControlError) -> str:
    if isinstance(err, ControlPlaneErrorAnswer):
        return f"fargo {command}: the control plane answered with an error: {err}"
    if state.control_plane(state_dir) is None and not state.locked(state_dir):
        left = _left_running(state_dir)
        if left:
            return (
                "the twin's control plane is not running: it stopped without `fargo down` "
                f"(it crashed or was killed), and {len(left)} of its processes still run: "
                f"{', '.join(left)}.{_still_serving(state_dir)} `fargo down` stops them; "
                "then `fargo up` starts the twin again"
            )
        return "the twin is not running (start it with `fargo up`)"
    return f"fargo {command}: the twin runs but {err}"


def _still_serving(state_dir: Path) -> str:
    """What the data plane a dead control plane left still does, if it runs."""
    running = {r.path.stem for r in state.recorded_processes(state_dir) if r.alive()}
    caddys = {name for name in running if name.startswith("caddy")} - {
        name for name in running if name.endswith("-targets")
    }
    lookups = all(f"{name}-targets" in running for name in caddys)
    if not caddys or not lookups:
        return ""
    discovery = (
        " and discovery names resolve to the last known records"
        if ("dns-discovery" in running)
        else ""
    )
    return (
        " The load balancers keep routing to the last known targets"
        f"{discovery}, but nothing checks the tasks' health or replaces a task that stops."
    )


def _left_running(state_dir: Path) -> list[str]:
    """What a dead control plane left running, as recorded in the state folder: each
    process (tasks counted per service)."""
    if not (state_dir / state.PID_DIRECTORY).is_dir():
        return []
    parts: list[str] = []
    tasks: dict[str, int] = {}
    for record in state.recorded_processes(state_dir):
        if not (record.alive() or record.group_alive()):
            continue
        if record.what.startswith("task "):
            service = record.what.rsplit(" ", 1)[-1]
            tasks[service] = tasks.get(service, 0) + 1
        elif record.path.name != state.CONTROL_PLANE_RECORD:
            parts.append(f"{record.what} (pid {record.pid})")
    parts += [f"{count} task{'s' if count > 1 else ''} of {name}" for name, count in tasks.items()]
    return parts


def demo_command(args: argparse.Namespace) -> int:
    from fargo.demo.report import as_json, render
    from fargo.local.demo.twin import run_demo

    spec = load_spec(args.file)
    if args.cloud:
        from fargo.cloud.demo import cloud_demo

        return cloud_demo(spec, calls=args.calls, as_json=args.json)
    state_dir = args.state_dir.resolve()
    try:
        status = asyncio.run(ControlClient(state.control_socket(state_dir)).status())
    except ControlError as err:
        message = _not_answering("demo", state_dir, err)
        print(message.replace("`fargo up`", "`fargo up --detach`"), file=sys.stderr)
        return 1
    control = ControlClient(state.control_socket(state_dir), timeout=60)
    points = asyncio.run(run_demo(spec, status, calls=args.calls, control=control))
    print(json.dumps(as_json(points), indent=2) if args.json else render(points))
    return 0 if all(p.status != "fail" for p in points) else 1


def update_service_command(args: argparse.Namespace) -> int:
    client = ControlClient(state.control_socket(args.state_dir.resolve()), timeout=600)
    try:
        result = asyncio.run(client.post(f"/deployments/{args.service}", timeout=600))
    except ControlError as err:
        print(f"fargo update-service: {err}", file=sys.stderr)
        return 1
    verdict = "completed" if result["completed"] else "rolled back"
    print(
        f"deployment of {args.service} revision {result['revision']} ({result['image']}) {verdict}"
    )
    for event in result["events"][-4:]:
        print(f"  {event}")
    return 0 if result["completed"] else 1
