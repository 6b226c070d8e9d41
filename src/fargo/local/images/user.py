"""A Dockerfile's ``USER`` on this machine: who it names, and what the twin does about it.

    task_user("10001:10001")   # TaskUser(uid=10001, gid=10001, …) when the twin can switch
    user_note("appuser")       # the build-time report for the USER line

Honoured when the twin runs as root (the real one, not inside a user namespace), in
both network modes: the task's first process (`fargo.local.images.rootfs`, in a mount
namespace of the task's own) switches to the user after laying out the task's root, and
makes what the task needs readable by it there (its Python environment and interpreter,
whose folders — the owner-only state folder, ``/root`` — it could not enter otherwise;
the rest of them stay hidden). It may bind ports below 1024, as in Docker. A name or
group this machine does not have runs the task as ``nobody`` instead; a numeric uid
needs no entry (as in Docker), its group is the uid's in ``/etc/passwd``, else
``nogroup``. Not root, only root can start a process as another user: the task runs as
the user running fargo, and the build says so.
"""

from __future__ import annotations

import grp
import os
import pwd
from dataclasses import dataclass
from pathlib import Path

NOBODY = 65534
NOGROUP = 65534


@dataclass(frozen=True)
class TaskUser:
    """Who a task runs as: what ``USER`` names on this machine, or the fallback."""

    uid: int
    gid: int
    home: str
    missing: str = ""
    """``no user "app"``: why the fallback (``nobody``) runs the task; empty if none."""

    @property
    def spec(self) -> str:
        return f"{self.uid}:{self.gid}"


def task_user(user: str) -> TaskUser:
    """``user`` (``name``, ``uid``, ``name:group``, ``uid:gid``) on this machine."""
    name, _, group = user.partition(":")
    entry: pwd.struct_passwd | None
    try:
        entry = pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
    except KeyError:
        if not name.isdigit():
            return TaskUser(NOBODY, NOGROUP, "/", missing=f'no user "{name}"')
        entry = None
    uid = int(name) if name.isdigit() else entry.pw_uid if entry else NOBODY
    gid = entry.pw_gid if entry else NOGROUP
    home = entry.pw_dir if entry else "/"
    if group.isdigit():
        gid = int(group)
    elif group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            return TaskUser(NOBODY, NOGROUP, "/", missing=f'no group "{group}"')
    return TaskUser(uid, gid, home)


def is_real_root() -> bool:
    """Root of this machine: uid 0 in the first user namespace (a rootless VPC runs as
    uid 0 of a user namespace that maps one uid: no other user to switch to)."""
    if os.geteuid() != 0:
        return False
    try:
        mapping = Path("/proc/self/uid_map").read_text().split()
    except OSError:
        return True
    return mapping[:3] == ["0", "0", "4294967295"]


def user_note(user: str, *, real_root: bool | None = None, euid: int | None = None) -> str:
    """What the build reports for ``USER user``."""
    real_root = is_real_root() if real_root is None else real_root
    if not real_root:
        euid = os.geteuid() if euid is None else euid
        me = _name_of(euid)
        return (
            f"{user}: not switched: only root can start a task as another user, and fargo "
            f"runs as {me}; tasks run as {me}"
        )
    resolved = task_user(user)
    who = f"uid {resolved.uid}, gid {resolved.gid}"
    if resolved.missing:
        who = f"nobody ({who}), as {resolved.missing} on this machine"
    return f"{user}: tasks run as {who}"


def _name_of(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"
