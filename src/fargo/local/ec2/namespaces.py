"""Linux namespaces for the VPC: the two system calls Python lacks (`unshare(2)`,
`setns(2)`) and the user namespace that lets an unprivileged process build a VPC.

As root nothing is needed: root creates network namespaces directly and keeps its
capabilities in the machine's user namespace (it may still bind privileged ports on
the host). Any other user first enters a user namespace of its own, in which it is
uid 0 and may create network namespaces, veth pairs and nftables tables — all of
them invisible to the host. This must happen while the process is single-threaded
(the kernel refuses otherwise), so call it first thing in ``main()``::

    from fargo.local.ec2.namespaces import enter_user_namespace, user_namespaces_available

    reason = user_namespaces_available()
    if reason is not None:
        raise SystemExit(f"VPC mode is not possible here: {reason}")
    enter_user_namespace()  # before asyncio, thread pools or anything else starts a thread
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import threading

from fargo.local.ec2 import id_map
from fargo.local.ec2.errors import NamespaceError

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000

_libc = ctypes.CDLL(None, use_errno=True)


def unshare(flags: int) -> None:
    """Move the calling thread into new namespaces (`unshare(2)`); raises OSError."""
    if _libc.unshare(ctypes.c_int(flags)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare({flags:#x}): {os.strerror(err)}")


def setns(fd: int, nstype: int = 0) -> None:
    """Move the calling thread into the namespace open at ``fd`` (`setns(2)`); raises OSError."""
    if _libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns({fd}, {nstype:#x}): {os.strerror(err)}")


def thread_count() -> int:
    """Threads of this process as the kernel sees them (also those Python did not start)."""
    return len(os.listdir("/proc/self/task"))


def in_own_user_namespace() -> bool:
    """Whether this process runs in a user namespace other than the machine's."""
    with open("/proc/self/uid_map") as f:
        return f.read().split() != ["0", "0", "4294967295"]


def enter_user_namespace() -> str:
    """Become uid 0 of a new user namespace unless already root (then do nothing); ""
    when the user's subordinate ids are mapped too (`fargo.local.ec2.id_map`: tasks may
    run as an image's USER), else why not.

    Without them only the caller's uid and gid are mapped, to 0 (``setgroups`` denied,
    as the kernel requires for an unprivileged map). Files keep their real owner on disk;
    the process keeps its host network namespace, so sockets it opens there behave as
    before.
    """
    if os.geteuid() == 0:
        return ""
    if threading.active_count() != 1 or thread_count() != 1:
        raise NamespaceError(
            f"cannot enter a user namespace: the process already runs {thread_count()} "
            "threads, and the kernel allows this only to a single-threaded process; "
            "call enter_user_namespace() before starting threads or an event loop"
        )
    uid, gid = os.geteuid(), os.getegid()
    ranges = id_map.subordinate_ranges(uid)
    mapper = id_map.IdMapper(ranges) if ranges is not None else None
    try:
        unshare(CLONE_NEWUSER)
    except OSError as exc:
        if mapper is not None:
            mapper.cancel()
        raise NamespaceError(
            f"cannot create a user namespace ({exc.strerror}); see "
            "user_namespaces_available() for the reason, or run as root"
        ) from exc
    if mapper is not None:
        try:
            mapper.map()
            return ""
        except id_map.MapNotWritten as err:
            reason = str(err)
    else:
        reason = id_map.why_not(uid)
    id_map.mapping_problem = reason  # for the build notes of this process
    try:
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"0 {uid} 1\n")
        _write("/proc/self/gid_map", f"0 {gid} 1\n")
    except OSError as exc:
        raise NamespaceError(
            f"created a user namespace but could not map uid {uid} / gid {gid} into it "
            f"({exc.strerror}); the process must exit, it has no usable identity"
        ) from exc
    return reason


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


_PROBE = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
def unshare(flags, what):
    if libc.unshare(flags) != 0:
        sys.exit(f"{what}: {os.strerror(ctypes.get_errno())}")
if os.geteuid() != 0:
    uid, gid = os.geteuid(), os.getegid()
    unshare(0x10000000, "unshare(CLONE_NEWUSER)")
    for path, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
        with open(f"/proc/self/{path}", "w") as f:
            f.write(text)
unshare(0x40000000, "unshare(CLONE_NEWNET)")
"""


def user_namespaces_available() -> str | None:
    """None when this process can build a VPC (network namespaces: as root directly,
    otherwise inside a user namespace of its own); else the reason, for people.

    Probes in a short-lived child process, so it is safe in a threaded process and
    leaves nothing behind.
    """
    try:
        probe = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"could not run the probe {sys.executable}: {exc}"
    if probe.returncode == 0:
        return None
    detail = probe.stderr.strip().splitlines()[-1:] or [f"exit status {probe.returncode}"]
    hints = _restriction_hints()
    return f"the kernel refused: {detail[0]}" + (f" ({hints})" if hints else "")


def _restriction_hints() -> str:
    """Known switches that forbid unprivileged user namespaces, as set on this machine."""
    found = []
    for path, bad in (
        ("/proc/sys/kernel/unprivileged_userns_clone", "0"),
        ("/proc/sys/user/max_user_namespaces", "0"),
        ("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "1"),
    ):
        try:
            with open(path) as f:
                if f.read().strip() == bad:
                    found.append(f"{path} is {bad}")
        except OSError:
            continue
    return "; ".join(found)
