"""Running a command inside a task, as ``docker exec`` does: `fargo exec`, and the
container health checks a task definition gives as a command.

    process = ExecTarget.read(pid, what="task 7ae4… of service web")
    argv = exec_argv(process, ["cat", "/etc/resolv.conf"], network=True)
    # run argv with process.environment, in process.cwd unless `entered(...)`

The command gets the task's environment (as its process was started with it) and its
working directory. In VPC mode it also runs in the task's network namespace (its ENI:
its address, routes and security groups) and mount namespace (its own
``/etc/resolv.conf`` and ``/etc/hosts``), entered with ``nsenter``, plus the twin's user
namespace when the task runs in another one than the caller (an unprivileged ``fargo
up``). In loopback mode a task has no namespaces of its own — but a mount namespace, and
a user namespace, when its image has a ``USER`` — else the command runs as a plain
process with the task's environment and working directory.

A task whose user only a user namespace of its own maps (`fargo.local.images.user`,
``Switch.ONE_ID``) has no root: a command runs as its user there. In VPC mode its mount
and network namespaces are the twin's, so `fargo exec` enters them through the twin's
user namespace, as its root (ECS Exec runs as the container's root), and a health check
then goes on into the task's own.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from fargo.local.ec2.commands import find_tool
from fargo.local.ec2.errors import Ec2Error
from fargo.local.pid_namespace import container_pid

NS_GET_USERNS = 0xB701  # ioctl(2) on a namespace: the user namespace that owns it


class ExecError(Exception):
    """Why the command cannot run in the task; the message is for people."""


@dataclass(frozen=True)
class ExecTarget:
    """What a command run in a task takes from the task's process (its /proc entry)."""

    pid: int
    environment: dict[str, str]
    cwd: str
    other_user_namespace: bool
    """The task runs in a user namespace other than ours (the twin's, when unprivileged)."""
    other_mount_namespace: bool = False
    """The task has a root of its own (VPC mode; a USER image's task in loopback mode)."""
    other_pid_namespace: bool = False
    """The task has a PID namespace of its own (VPC mode)."""

    uid: int = 0
    """Who the task runs as (its image's USER), as this process's user namespace sees it."""
    gid: int = 0

    @classmethod
    def read(
        cls, pid: int, *, what: str, advice: str = "run it as the user who ran fargo up"
    ) -> ExecTarget:
        """Read the process of the task ``what`` names, whose first process is ``pid`` (its
        command's: `container_pid`); `ExecError` if it is gone or not ours to read
        (``advice`` then says what to do)."""
        pid = container_pid(pid)
        proc = Path(f"/proc/{pid}")
        try:
            user_namespace = os.readlink(proc / "ns" / "user")
            mount_namespace = os.readlink(proc / "ns" / "mnt")
            pid_namespace = os.readlink(proc / "ns" / "pid")
            other_user_namespace = user_namespace != os.readlink("/proc/self/ns/user")
            environ = _environ(proc, other_user_namespace)
            cwd = os.readlink(proc / "cwd")
            status = (proc / "status").read_text()
        except FileNotFoundError as err:
            raise ExecError(f"{what}: its process {pid} has exited; see `fargo status`") from err
        except PermissionError as err:
            raise ExecError(
                f"{what}: cannot read its process {pid} ({err.strerror}); {advice}"
            ) from err
        variables = (entry.partition(b"=") for entry in environ.split(b"\0") if entry)
        environment = {os.fsdecode(k): os.fsdecode(v) for k, _, v in variables}
        ids = {
            key: int(value.split()[0])
            for key, _, value in (line.partition(":") for line in status.splitlines())
            if key in ("Uid", "Gid")
        }
        if other_user_namespace:  # as the task's own namespace names them, for nsenter
            ids["Uid"] = id_inside(proc / "uid_map", ids.get("Uid", 0))
            ids["Gid"] = id_inside(proc / "gid_map", ids.get("Gid", 0))
        return cls(
            pid=pid,
            environment=environment,
            cwd=cwd,
            other_user_namespace=other_user_namespace,
            other_mount_namespace=mount_namespace != os.readlink("/proc/self/ns/mnt"),
            other_pid_namespace=pid_namespace != os.readlink("/proc/self/ns/pid"),
            uid=ids.get("Uid", 0),
            gid=ids.get("Gid", 0),
        )


def exec_argv(
    process: ExecTarget, command: list[str], *, network: bool, as_task_user: bool = False
) -> list[str]:
    """The argv that runs ``command`` in the task: behind ``nsenter`` into the task's mount
    namespace when it has one, and into its ``network`` namespace (VPC mode); else as it is.
    ``as_task_user``: as the task's user, as Docker runs a health check (run without
    ``nsenter``, the caller switches: `credentials`)."""
    if not network and not process.other_mount_namespace:
        return command
    try:
        nsenter = find_tool("nsenter")
    except Ec2Error as err:
        raise ExecError(str(err)) from err
    # Into the task's user namespace (or the one owning its mount namespace), where we may
    # enter the others (nsenter orders them so); --preserve-credentials: keep our own ids
    # (setgroups may be denied in it: a namespace that maps one id).
    user = []
    if process.other_user_namespace:
        through = None if as_task_user else mount_namespace_owner(process.pid)
        if through is None:
            user = ["--user", "--preserve-credentials"]
        elif through:
            user = [f"--user={through}", "--preserve-credentials"]
    return [
        nsenter,
        f"--target={process.pid}",
        *user,
        *(["--net"] if network else []),
        *(["--pid"] if process.other_pid_namespace else []),  # nsenter forks into it
        "--mount",
        "--root",  # the task's own root: its image's folders at their paths
        "--wd",  # and its working directory, as the task sees it
        *(_setuid(process) if as_task_user else []),
        "--",
        *command,
    ]


def credentials(process: ExecTarget) -> dict[str, object]:
    """`subprocess` keywords that run a command as the task's user (none if it is ours)."""
    if (process.uid, process.gid) == (os.geteuid(), os.getegid()):
        return {}
    return {"user": process.uid, "group": process.gid, "extra_groups": []}


def _setuid(process: ExecTarget) -> list[str]:
    # In a user namespace of the task's own its ids are that namespace's: equal numbers
    # to ours say nothing (USER 1000 with a user of uid 1000), so they are always given.
    if not process.other_user_namespace and (process.uid, process.gid) == (
        os.geteuid(),
        os.getegid(),
    ):
        return []
    # nsenter sets the group first and drops the supplementary groups with it
    return [f"--setgid={process.gid}", f"--setuid={process.uid}"]


def id_inside(id_map: Path, seen: int) -> int:
    """The id ``seen`` from here, as the user namespace whose map ``id_map`` is names it
    (unchanged if the map does not hold it)."""
    with contextlib.suppress(OSError, ValueError):
        for line in id_map.read_text().splitlines():
            inside, outside, count = (int(word) for word in line.split())
            if outside <= seen < outside + count:
                return seen - outside + inside
    return seen


def mount_namespace_owner(pid: int) -> str | None:
    """Where a command not run as the task's user enters the task ``pid``: through the user
    namespace owning its mount namespace, when that is not the task's own — ``nsenter
    --user=``'s path: a process's in it (the twin's Caddys, DNS processes, control plane),
    or "" when it is ours; None: through the task's own."""
    try:
        owner = _owner_inode(Path(f"/proc/{pid}/ns/mnt"))
        if owner == os.stat(f"/proc/{pid}/ns/user").st_ino:
            return None
        if owner == os.stat("/proc/self/ns/user").st_ino:
            return ""
    except OSError:
        return None
    mine = os.geteuid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if entry.stat().st_uid == mine and os.stat(f"{entry.path}/ns/user").st_ino == owner:
                return f"{entry.path}/ns/user"
    return None


def _owner_inode(namespace: Path) -> int:
    """The inode of the user namespace that owns ``namespace`` (ioctl NS_GET_USERNS)."""
    opened = os.open(namespace, os.O_RDONLY | os.O_CLOEXEC)
    try:
        owner = fcntl.ioctl(opened, NS_GET_USERNS)
    finally:
        os.close(opened)
    try:
        return os.fstat(owner).st_ino
    finally:
        os.close(owner)


def _environ(proc: Path, other_user_namespace: bool) -> bytes:
    """The process's environment. A task of a rootless twin that runs as a subordinate id
    (its image's USER) owns its ``environ`` (mode 0400) on the host, where the user running
    fargo may not read it; in the twin's user namespace, whose root that user is, it may."""
    try:
        return (proc / "environ").read_bytes()
    except PermissionError:
        if not other_user_namespace:
            raise
    try:
        nsenter = find_tool("nsenter")
    except Ec2Error:
        raise PermissionError(13, "permission denied", str(proc / "environ")) from None
    argv = [nsenter, f"--target={proc.name}", "--user", "--preserve-credentials"]
    argv += ["cat", str(proc / "environ")]
    done = subprocess.run(argv, capture_output=True, timeout=10, check=False)
    if done.returncode != 0:
        if not proc.exists():
            raise FileNotFoundError(2, "no such process", str(proc))
        raise PermissionError(13, done.stderr.decode(errors="replace").strip(), str(proc))
    return done.stdout


def entered(process: ExecTarget, *, network: bool) -> bool:
    """Whether `exec_argv` enters the task's namespaces (``nsenter --wd`` then moves to its
    working directory itself)."""
    return network or process.other_mount_namespace
