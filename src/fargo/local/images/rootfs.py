"""Lay out an image's folders at their absolute paths, then run its command: the first
process of a task in VPC mode (and of a task with a ``USER`` in loopback mode, when fargo
runs as root), inside its private mount namespace.

    python -I -S rootfs.py IMAGE_ROOT WORKDIR [--user UID:GID:HOME] [--expose PATH]... \
        [--network host] -- python -m app

A new root is assembled on a tmpfs: every entry of this machine's ``/`` bind-mounted
(its programs, libraries, the interpreters and the image's environment stay where they
are), and every entry of the image's root over it (``/app``, ``/srv``); where both have a
folder (``/opt``, ``/usr/local``) a tmpfs holds the union of the two, the image's entry
winning on a clash. Nothing is written to this machine's folders. Then ``chroot`` to the
new root, ``chdir`` to ``WORKDIR``, and ``exec`` the command.

With ``--user`` (a Dockerfile's ``USER``, see `fargo.local.images.user`) the command runs
as that user: each ``--expose`` path (the task's Python environment, its interpreter) is
made reachable for it in the new root — a folder on the way it may not enter (the
owner-only state folder, ``/root``) is covered by a tmpfs holding only what leads to the
exposed paths, so the rest stays hidden — unprivileged ports are opened from 0 in the
task's network namespace (as Docker does, so ``EXPOSE 80`` still binds), its output
pipes become the user's, and the groups, group and user are switched last. With
``--network host`` (loopback mode: the task shares this machine's network namespace,
whose settings are not the task's to change) ports below 1024 are opened by keeping
``CAP_NET_BIND_SERVICE`` alone across the switch instead.

With ``--user-namespace own`` as well (not root, where no user namespace maps the user's
ids: `fargo.local.images.user`) nothing is switched: the process makes a user namespace
of its own that maps the user running it — its one id — to the user's uid and gid, as an
unprivileged ``unshare --map-user --map-group`` does, and runs the command there: the
task is its ``USER`` as it sees itself, and the user running fargo as this machine sees
it. In loopback mode it does so first, with a mount namespace owned by it to lay out the
root in; in VPC mode last before the ``chroot``, so its mount and network namespaces stay
the twin's (its unprivileged ports opened while they are its to set).

In VPC mode the task gets a PID namespace of its own, as a Fargate task has: this
process makes it and stays outside as the task's first process (the one the twin
starts, signals and waits for), while its child — the namespace's first process, PID 1
in it, with a ``/proc`` of that namespace mounted in the new root — goes on to run the
command. So a task sees only its own processes, and cannot read another task's
environment (its secrets) in ``/proc``. The process outside passes every signal it gets
on to the command (the command runs in a process group of its own, so a signal to the
task's group reaches it once) and ends as the command ends, with its exit status or
signal; if it is killed, the kernel kills the namespace with it (``PR_SET_PDEATHSIG``).
As in a container, the command is PID 1: a signal it has no handler for does not end
it, and a stop falls back to SIGKILL after the stop timeout, as on Fargate.

Run as a file, with only the standard library: it must not depend on what the task's
``PYTHONPATH`` holds. The mount namespace is the task's own (``unshare --mount
--propagation private`` before it, or the one ``--user-namespace own`` makes), so the
mounts vanish with the task.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import stat
import sys
from typing import NoReturn

MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
PR_SET_PDEATHSIG = 1
CLONE_NEWUSER = 0x10000000
PR_SET_KEEPCAPS = 8
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
CAP_NET_BIND_SERVICE = 10
LINUX_CAPABILITY_VERSION_3 = 0x20080522
OVERFLOW_ID = 65534  # the kernel's overflowuid and overflowgid (their default)
_libc = ctypes.CDLL(None, use_errno=True)


def mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None
) -> None:
    result = _libc.mount(
        source.encode() if source else None,
        target.encode(),
        fstype.encode() if fstype else None,
        flags,
        data.encode() if data else None,
    )
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"mount {source} on {target}: {os.strerror(error)}")


def is_folder(path: str) -> bool:
    return os.path.isdir(path) and not os.path.islink(path)


def place(target: str, source: str) -> None:
    """``source`` at ``target``: a link as a link, a folder or file bind-mounted."""
    if os.path.islink(source):
        os.symlink(os.readlink(source), target)
    elif is_folder(source):
        os.mkdir(target)
        mount(source, target, None, MS_BIND | MS_REC)
    elif os.path.exists(source):
        with open(target, "w"):
            pass
        mount(source, target, None, MS_BIND)


def populate(
    target: str, host: str | None, image: str | None, *, empty: tuple[str, ...] = ()
) -> None:
    """Fill the empty folder ``target`` with the union of ``host`` and ``image``; a folder
    of this machine's that the process may not read (``/root``, not as root) adds nothing,
    as a user in a container does not see it either. The names in ``empty`` (``proc``) are
    empty folders, for something of the task's own to be mounted on."""
    for name in empty:
        os.mkdir(os.path.join(target, name))
    names: set[str] = set()
    if host:
        with contextlib.suppress(PermissionError):
            names = set(os.listdir(host))
    names |= set(os.listdir(image)) if image else set()
    for name in sorted(names - set(empty)):
        inside = os.path.join(target, name)
        from_host = os.path.join(host, name) if host else None
        from_image = os.path.join(image, name) if image else None
        in_host = from_host is not None and os.path.lexists(from_host)
        in_image = from_image is not None and os.path.lexists(from_image)
        if in_host and in_image and is_folder(from_host or "") and is_folder(from_image or ""):
            os.mkdir(inside)
            mount("tmpfs", inside, "tmpfs", 0)
            populate(inside, from_host, from_image)
        elif in_image:
            place(inside, from_image or "")
        elif in_host:
            place(inside, from_host or "")


def traversable(path: str, uid: int, gid: int) -> bool:
    """Whether ``uid`` (group ``gid``, no others) may enter the folder ``path``. An owner
    a user namespace does not map shows as the overflow id (65534, nobody): a task of
    nobody is not its owner, so only the others' bits count then."""
    info = os.stat(path)
    if info.st_uid == uid and uid != OVERFLOW_ID:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid == gid and gid != OVERFLOW_ID:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def expose(new_root: str, paths: list[str], uid: int, gid: int) -> None:
    """Make each of ``paths`` reachable for ``uid`` in ``new_root``: every folder on the
    way it may not enter becomes a tmpfs holding only the way on."""
    ancestors = set()
    for path in paths:
        parts = os.path.normpath(path).strip("/").split("/")
        ancestors |= {"/" + "/".join(parts[:depth]) for depth in range(1, len(parts))}
    closed = sorted(
        (a for a in ancestors if os.path.isdir(a) and not traversable(a, uid, gid)),
        key=lambda a: a.count("/"),
    )
    for folder in closed:
        inside = new_root + folder
        mount("tmpfs", inside, "tmpfs", 0, "mode=0755")
        ways = {
            os.path.normpath(p)[len(folder) + 1 :].split("/")[0]
            for p in paths
            if os.path.normpath(p).startswith(folder + "/")
        }
        for name in sorted(ways):
            if folder + "/" + name in closed:
                os.mkdir(os.path.join(inside, name))
            else:
                place(os.path.join(inside, name), os.path.join(folder, name))


def open_unprivileged_ports() -> None:
    """Every port bindable without privileges in this network namespace, as in Docker."""
    try:
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start", "w") as setting:
            setting.write("0")
    except OSError:
        pass  # an older kernel: ports below 1024 stay privileged


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _checked(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def keep_capabilities() -> None:
    """Keep the permitted capabilities across the coming `os.setuid` (call before it)."""
    _checked(_libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0), "prctl(PR_SET_KEEPCAPS)")


def bind_service_only() -> None:
    """After `os.setuid`: ``CAP_NET_BIND_SERVICE`` the one capability left, and kept by the
    command this process becomes (an ambient capability), as Docker gives a non-root user."""
    header = _CapHeader(LINUX_CAPABILITY_VERSION_3, 0)
    bit = 1 << CAP_NET_BIND_SERVICE
    data = (_CapData * 2)(_CapData(bit, bit, bit), _CapData(0, 0, 0))
    _checked(_libc.capset(ctypes.byref(header), data), "capset")
    raised = _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0)
    _checked(raised, "prctl(PR_CAP_AMBIENT_RAISE)")


def own_user_namespace(uid: int, gid: int, *, mount_namespace: bool) -> None:
    """Into a user namespace of this process's own (and a mount namespace owned by it, with
    ``mount_namespace``), where its one id (uid and gid) is ``uid`` and ``gid``: what an
    unprivileged process may map. It keeps every capability there until it runs a program
    as ``uid`` (not 0)."""
    outer_uid, outer_gid = os.geteuid(), os.getegid()
    flags = CLONE_NEWUSER | (CLONE_NEWNS if mount_namespace else 0)
    _checked(_libc.unshare(flags), "unshare(CLONE_NEWUSER)")
    # setgroups first: a namespace mapping one id may only do so with it denied
    for name, text in (
        ("setgroups", "deny"),
        ("uid_map", f"{uid} {outer_uid} 1"),
        ("gid_map", f"{gid} {outer_gid} 1"),
    ):
        with open(f"/proc/self/{name}", "w") as settings:
            settings.write(text)
    if mount_namespace:
        mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing mounted here leaves it


def own_pid_namespace(proc: str) -> int:
    """Go on as PID 1 of a new PID namespace, with its ``/proc`` mounted at ``proc``; this
    process stays outside, passing signals on, and exits as that one does (never returns
    here). Returns a descriptor for `die_with_parent`, once the ids are switched."""
    _checked(_libc.unshare(CLONE_NEWPID), "unshare(CLONE_NEWPID)")
    parent_alive, alive_write = os.pipe()  # its end closes when the process outside ends
    child = os.fork()
    if child == 0:
        os.close(alive_write)
        os.setpgid(0, 0)  # signals to the task's group reach it once: passed on from outside
        mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        return parent_alive
    os.close(parent_alive)
    relay(child)


def die_with_parent(parent_alive: int) -> None:
    """Be killed when the process outside ends (the twin kills the task's first process
    last): set after the ids are switched, which clear the setting; and if that process
    is already gone, end now."""
    _checked(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PDEATHSIG)")
    readable, _, _ = select.select([parent_alive], [], [], 0)
    os.close(parent_alive)
    if readable:  # its write end closed: the process outside has ended
        os._exit(128 + signal.SIGKILL)


def relay(child: int) -> NoReturn:
    """Pass every signal this process gets on to ``child``, and end as it ends."""
    kept = {signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD}
    for number in signal.valid_signals():
        if number in kept or not 0 < number < signal.NSIG:
            continue
        with contextlib.suppress(OSError, ValueError):
            signal.signal(number, lambda received, _frame: _pass_on(child, received))
    _, status = os.waitpid(child, 0)
    if os.WIFSIGNALED(status):  # ended by a signal: so does this process, for the twin to see
        ended_by = os.WTERMSIG(status)
        with contextlib.suppress(OSError):  # SIGKILL has no handler to reset
            signal.signal(ended_by, signal.SIG_DFL)
        os.kill(os.getpid(), ended_by)
        os._exit(128 + ended_by)
    os._exit(os.waitstatus_to_exitcode(status))


def _pass_on(child: int, number: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(child, number)


def give_pipes(uid: int, gid: int) -> None:
    """The task's output pipes become the user's, as a container's own pipes are: it may
    open them again (``/proc/self/fd/1``, e.g. for a non-blocking descriptor of its own)."""
    for fd in (1, 2):
        try:
            if stat.S_ISFIFO(os.fstat(fd).st_mode):
                os.fchown(fd, uid, gid)
        except OSError:
            pass


def main(arguments: list[str]) -> None:
    usage = (
        "usage: rootfs.py IMAGE_ROOT WORKDIR [--user UID:GID:HOME] [--expose PATH]... "
        "[--user-namespace own] [--network host] -- COMMAND [ARGUMENT...]"
    )
    if "--" not in arguments or arguments.index("--") < 2:
        raise SystemExit(usage)
    split = arguments.index("--")
    image_root, workdir, *options = arguments[:split]
    argv = arguments[split + 1 :]
    if not argv or len(options) % 2:
        raise SystemExit(usage)
    user: tuple[int, int, str] | None = None
    exposed: list[str] = []
    host_network = own_namespace = False
    for option, value in zip(options[::2], options[1::2], strict=True):
        if option == "--user":
            uid, gid, home = value.split(":", 2)
            user = (int(uid), int(gid), home)
        elif option == "--expose":
            exposed.append(value)
        elif option == "--network" and value == "host":
            host_network = True
        elif option == "--user-namespace" and value == "own":
            own_namespace = True
        else:
            raise SystemExit(usage)
    mapped, switched = (user, None) if own_namespace else (None, user)
    if mapped is not None and host_network:  # loopback mode: its mount namespace with it
        own_user_namespace(mapped[0], mapped[1], mount_namespace=True)
    new_root = image_root.rstrip("/") + ".mnt"
    os.makedirs(new_root, exist_ok=True)
    mount("tmpfs", new_root, "tmpfs", 0)
    populate(new_root, "/", image_root, empty=() if host_network else ("proc",))
    if switched is not None:
        expose(new_root, exposed, switched[0], switched[1])
    if user is not None and not host_network:
        open_unprivileged_ports()
    parent_alive = None
    if not host_network:  # VPC mode: its own processes only (loopback mode shares them)
        parent_alive = own_pid_namespace(os.path.join(new_root, "proc"))
    if mapped is not None and not host_network:
        # VPC mode: the task's mount and network namespaces stay the twin's, whose root
        # `fargo exec` enters them as (as ECS Exec runs as the container's root).
        own_user_namespace(mapped[0], mapped[1], mount_namespace=False)
    os.chroot(new_root)
    os.chdir(workdir if os.path.isdir(workdir) else "/")
    if user is not None:
        os.environ["HOME"] = user[2]
    if switched is not None:
        give_pipes(switched[0], switched[1])
        os.setgroups([])
        os.setgid(switched[1])
        if host_network:
            keep_capabilities()
        os.setuid(switched[0])
        if host_network:
            bind_service_only()
    if parent_alive is not None:
        die_with_parent(parent_alive)
    try:
        os.execvp(argv[0], argv)  # noqa: S606 - the image's command, as the Dockerfile says
    except OSError as err:
        raise SystemExit(f'exec: "{argv[0]}": {err.strerror}') from None


if __name__ == "__main__":
    main(sys.argv[1:])
