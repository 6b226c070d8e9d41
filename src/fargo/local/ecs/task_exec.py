"""Running a command inside a task, as ``docker exec`` does: `fargo exec`, and the
container health checks a task definition gives as a command.

    process = TaskProcess.read(pid, what="task 7ae4… of service web")
    argv = exec_argv(process, ["cat", "/etc/resolv.conf"], network=True)
    # run argv with process.environment, in process.cwd unless `entered(...)`

The command gets the task's environment (as its process was started with it) and its
working directory. In VPC mode it also runs in the task's network namespace (its ENI:
its address, routes and security groups) and mount namespace (its own
``/etc/resolv.conf`` and ``/etc/hosts``), entered with ``nsenter``, plus the twin's user
namespace when the task runs in another one than the caller (an unprivileged ``fargo
up``). In loopback mode a task has no namespaces of its own: the command runs as a plain
process with the task's environment and working directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fargo.local.ec2.commands import find_tool
from fargo.local.ec2.errors import Ec2Error


class ExecError(Exception):
    """Why the command cannot run in the task; the message is for people."""


@dataclass(frozen=True)
class TaskProcess:
    """What a command run in a task takes from the task's process (its /proc entry)."""

    pid: int
    environment: dict[str, str]
    cwd: str
    other_user_namespace: bool
    """The task runs in a user namespace other than ours (the twin's, when unprivileged)."""
    other_mount_namespace: bool = False
    """The task has a root of its own (VPC mode; a USER image's task in loopback mode)."""

    @classmethod
    def read(cls, pid: int, *, what: str) -> TaskProcess:
        """Read the process ``pid`` of the task ``what`` names; `ExecError` if it is gone
        or not ours to read."""
        proc = Path(f"/proc/{pid}")
        try:
            environ = (proc / "environ").read_bytes()
            cwd = os.readlink(proc / "cwd")
            user_namespace = os.readlink(proc / "ns" / "user")
            mount_namespace = os.readlink(proc / "ns" / "mnt")
        except FileNotFoundError as err:
            raise ExecError(f"{what}: its process {pid} has exited; see `fargo status`") from err
        except PermissionError as err:
            raise ExecError(
                f"{what}: cannot read its process {pid} ({err.strerror}); run it as the "
                "user who ran fargo up"
            ) from err
        variables = (entry.partition(b"=") for entry in environ.split(b"\0") if entry)
        environment = {os.fsdecode(k): os.fsdecode(v) for k, _, v in variables}
        return cls(
            pid=pid,
            environment=environment,
            cwd=cwd,
            other_user_namespace=user_namespace != os.readlink("/proc/self/ns/user"),
            other_mount_namespace=mount_namespace != os.readlink("/proc/self/ns/mnt"),
        )


def exec_argv(process: TaskProcess, command: list[str], *, network: bool) -> list[str]:
    """The argv that runs ``command`` in the task: behind ``nsenter`` into the task's mount
    namespace when it has one, and into its ``network`` namespace (VPC mode); else as it is."""
    if not network and not process.other_mount_namespace:
        return command
    try:
        nsenter = find_tool("nsenter")
    except Ec2Error as err:
        raise ExecError(str(err)) from err
    # Into the twin's user namespace first (nsenter orders it so), where we are uid 0 and
    # may enter the others; --preserve-credentials: setgroups is denied in it.
    user = ["--user", "--preserve-credentials"] if process.other_user_namespace else []
    return [
        nsenter,
        f"--target={process.pid}",
        *user,
        *(["--net"] if network else []),
        "--mount",
        "--root",  # the task's own root: its image's folders at their paths
        "--wd",  # and its working directory, as the task sees it
        "--",
        *command,
    ]


def entered(process: TaskProcess, *, network: bool) -> bool:
    """Whether `exec_argv` enters the task's namespaces (``nsenter --wd`` then moves to its
    working directory itself)."""
    return network or process.other_mount_namespace
