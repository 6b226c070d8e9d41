"""``fargo exec``: run a command inside a running task, the twin's ECS Exec.

    fargo exec backend-public -- getent hosts private.backend.microservice.local
    fargo exec frontend -- sh                            # a shell in the task; exit leaves
    fargo exec --task 7ae4 backend-public -- cat /etc/resolv.conf
    fargo exec --state-dir /tmp/twin frontend -- python3 -c 'print("hi")'

Options go before SERVICE; everything after it (after ``--``, if given) is the command,
run as `fargo.local.ecs.task_exec` says: the task's environment and working directory,
and in VPC mode its network and mount namespaces.

The CLI asks the control plane only for its status (which task, which process) and does
the rest itself, so it works while the control plane is busy. It replaces itself with
the command (`os.execvpe`): the terminal goes to the command, and fargo's exit status is
the command's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import NoReturn

from fargo.local.control.client import ControlClient, ControlError, ControlPlaneErrorAnswer
from fargo.local.ecs.task import TaskStatus
from fargo.local.ecs.task_exec import ExecError, ExecTarget, entered, exec_argv
from fargo.local.state import folder as state
from fargo.local.status import ServiceStatus, TaskSummary, TwinStatus

# A task whose container process may still run: what `--task` may name.
LIVE_STATUSES = frozenset(
    {TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.DEACTIVATING, TaskStatus.STOPPING}
)
# They describe the user's terminal, not the task; a task started without one has none.
TERMINAL_VARIABLES = ("TERM",)
OWN_OPTIONS = ("--task", "--state-dir")


def exec_command(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.exec_parser
    command: list[str] = args.command
    if command[:1] == ["--"]:  # argparse keeps or drops it depending on the version
        command = command[1:]
    if not command:
        parser.error("no command given: fargo exec SERVICE -- COMMAND [ARG ...]")
    if command[0] in ("-h", "--help"):  # `fargo exec SERVICE --help`: help, not a program
        parser.print_help()
        return 0
    if command[0].split("=")[0] in OWN_OPTIONS:
        parser.error(
            f"options go before SERVICE ({command[0]} came after {args.service!r}, where "
            "the command starts): fargo exec [--state-dir DIR] [--task ID] SERVICE -- COMMAND"
        )
    state_dir: Path = args.state_dir.resolve()
    try:
        status = _status(state_dir)
        task = find_task(status, args.service, args.task)
        assert task.pid is not None
        process = ExecTarget.read(
            task.pid,
            what=f"task {task.id} of service {task.service!r}",
            advice="run fargo exec as the user who ran fargo up",
        )
        network = status.network_mode != "loopback"
        argv = exec_argv(process, command, network=network)
    except ExecError as err:
        print(f"fargo exec: {err}", file=sys.stderr)
        return 1
    run(argv, process, entered=entered(process, network=network))


def _status(state_dir: Path) -> TwinStatus:
    try:
        return asyncio.run(ControlClient(state.control_socket(state_dir)).status())
    except ControlPlaneErrorAnswer as err:
        raise ExecError(f"the control plane answered with an error: {err}") from err
    except ControlError as err:
        if state.control_plane(state_dir) is None and not state.locked(state_dir):
            raise ExecError(
                f"no twin is running in {state_dir} (start one with `fargo up --detach`, "
                "or name its folder with --state-dir)"
            ) from err
        raise ExecError(f"the twin in {state_dir} runs but {err}") from err


def find_task(status: TwinStatus, service_name: str, task_id: str | None) -> TaskSummary:
    """The task to run in: the one ``task_id`` (an id or a unique prefix) names, else the
    service's first RUNNING task. Raises `ExecError` saying what there is instead."""
    service = _service(status, service_name)
    if task_id is None:
        running = [t for t in service.tasks if t.last_status == TaskStatus.RUNNING]
        if not running or running[0].pid is None:
            raise ExecError(f"service {service.name!r} has no RUNNING task{_tasks(service)}")
        return running[0]
    matches = [t for t in service.tasks if t.id.startswith(task_id)]
    if not matches:
        elsewhere = [
            f"{t.id} belongs to service {s.name!r}"
            for s in status.services
            for t in s.tasks
            if t.id.startswith(task_id)
        ]
        hint = f" ({'; '.join(elsewhere)})" if elsewhere else ""
        raise ExecError(f"service {service.name!r} has no task {task_id!r}{hint}{_tasks(service)}")
    if len(matches) > 1:
        ids = ", ".join(t.id for t in matches)
        raise ExecError(
            f"--task {task_id!r} is ambiguous: service {service.name!r} has tasks {ids}; "
            "give more of the id"
        )
    task = matches[0]
    if task.last_status not in LIVE_STATUSES or task.pid is None:
        raise ExecError(
            f"task {task.id} of service {service.name!r} is {task.last_status}, its "
            f"container does not run{_tasks(service)}"
        )
    return task


def _service(status: TwinStatus, name: str) -> ServiceStatus:
    for service in status.services:
        if service.name == name:
            return service
    known = ", ".join(s.name for s in status.services) or "none"
    raise ExecError(f"the twin has no service {name!r}; its services: {known}")


def _tasks(service: ServiceStatus) -> str:
    if not service.tasks:
        return "; it has no tasks"
    return "; its tasks: " + ", ".join(f"{t.id} {t.last_status}" for t in service.tasks)


def run(argv: list[str], process: ExecTarget, *, entered: bool) -> NoReturn:
    """Become ``argv`` with the task's environment, in the task's working directory
    (``nsenter --wd`` moves there itself when it ``entered`` the task's namespaces)."""
    env = dict(process.environment)
    for name in TERMINAL_VARIABLES:
        if name in os.environ and name not in env:
            env[name] = os.environ[name]
    if not entered:
        try:
            os.chdir(process.cwd)
        except OSError as err:
            print(f"fargo exec: the task's working directory: {err}", file=sys.stderr)
            raise SystemExit(1) from err
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        # The task's PATH finds the command, as it would for the task's own programs.
        os.execvpe(argv[0], argv, env)  # noqa: S606 - the user's command, as typed
    except OSError as err:
        print(f"fargo exec: {argv[0]}: {err.strerror}", file=sys.stderr)
        raise SystemExit(127 if isinstance(err, FileNotFoundError) else 126) from err
