"""A Dockerfile's ``USER`` on this machine: who it names, and what the twin does about it.

    task_user("10001:10001")   # TaskUser(uid=10001, gid=10001, …)
    switch_for(10001, 10001, namespaced=False)  # Switch.SETUID …, or None: it cannot
    user_note("appuser")       # the build-time report for the USER line

Honoured when the twin runs as root (the real one), in both network modes, and not as
root when a user namespace maps the user's subordinate ids (`fargo.local.ec2.id_map`)
and with them the task's ids — in VPC mode the twin's own, in loopback mode one of the
task's own (`own_namespace_maps`): the task's first process
(`fargo.local.images.rootfs`, in a mount namespace of the task's own) switches to the
user after laying out the task's root, and makes what the task needs readable by it
there (its Python environment and interpreter, whose folders — the owner-only state
folder, ``/root`` — it could not enter otherwise; the rest of them stay hidden). It may
bind ports below 1024, as in Docker. A name or group this machine does not have runs the
task as ``nobody`` instead; a numeric uid needs no entry (as in Docker), its group is the
uid's in ``/etc/passwd``, else ``nogroup``. Otherwise only root can start a process as
another user: the task is that user to itself alone — its first process makes a user
namespace of its own mapping the one id of the user running fargo to the ``USER``'s
(`Switch.ONE_ID`) — and the user running fargo to this machine. Only where user namespaces
are refused does it run as the user running fargo; the build says so, and why.
"""

from __future__ import annotations

import grp
import os
import pwd
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from fargo.local.ec2 import id_map

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


class Switch(Enum):
    """How a task's first process becomes its image's user."""

    SETUID = "setuid"
    """Root, or uid 0 of a namespace that maps the user's ids: it switches to them."""
    SUBORDINATE = "subordinate ids"
    """Loopback mode, not root: in a namespace of the task's own that maps the user's
    subordinate ids (``unshare --map-root-user --map-auto``), it switches to them."""
    ONE_ID = "one id"
    """A namespace of the task's own maps the one id of the user running fargo to the
    user's ids (`fargo.local.images.rootfs` ``--user-namespace own``): nothing to switch."""


def switch_for(uid: int, gid: int, *, namespaced: bool) -> Switch | None:
    """How a task runs as ``uid``:``gid`` here (``namespaced``: in VPC mode); None: it
    cannot, and runs as the user running fargo."""
    if can_switch_to(uid, gid):
        return Switch.SETUID
    if not namespaced and user_namespace_needed() and own_namespace_maps(uid, gid):
        return Switch.SUBORDINATE
    if not id_map.one_id_namespace():
        return Switch.ONE_ID
    return None


def can_switch_to(uid: int, gid: int) -> bool:
    """Whether a task may run as ``uid``:``gid``: root of this machine, or uid 0 of a user
    namespace that maps both ids and allows ``setgroups`` (rootless VPC mode with the
    user's subordinate ids: `fargo.local.ec2.id_map`)."""
    if os.geteuid() != 0:
        return False
    uids, gids = _mapped("uid_map"), _mapped("gid_map")
    if uids is None or gids is None:
        return True  # no user namespaces here: the machine's root
    try:
        allowed = Path("/proc/self/setgroups").read_text().strip() == "allow"
    except OSError:
        allowed = True
    return allowed and id_map.within(uids, uid) and id_map.within(gids, gid)


def user_namespace_needed() -> bool:
    """Whether a loopback-mode task switched to another user needs a user namespace of its
    own: this process is not root (of its namespace)."""
    return os.geteuid() != 0


def own_namespace_maps(uid: int, gid: int) -> bool:
    """Whether a user namespace of a task's own (``unshare --map-root-user --map-auto``)
    maps ``uid`` and ``gid`` here: the user running fargo is its 0, the user's subordinate
    ids (the first range) its 1 on (`fargo.local.ec2.id_map.own_namespace`)."""
    found = id_map.own_namespace()
    return not isinstance(found, str) and found.maps(uid, gid)


def _mapped(name: str) -> tuple[tuple[int, int], ...] | None:
    """The ids this process's user namespace maps (first id inside, count); None if the
    kernel has no user namespaces."""
    try:
        return id_map.map_ranges(Path(f"/proc/self/{name}").read_text())
    except OSError:
        return None


def user_note(
    user: str,
    *,
    switches: bool | None = None,
    euid: int | None = None,
    subordinate: str | None = None,
    one_id: str | None = None,
) -> str:
    """What the build reports for ``USER user``: whether tasks run as it, and how. ``switches``,
    ``subordinate``, ``one_id``: what this machine allows, as `can_switch_to`,
    `fargo.local.ec2.id_map.own_namespace` and `fargo.local.ec2.id_map.one_id_namespace`
    would find it (for tests)."""
    resolved = task_user(user)
    who = f"uid {resolved.uid}, gid {resolved.gid}"
    if resolved.missing:
        who = f"nobody ({who}), as {resolved.missing} on this machine"
    if can_switch_to(resolved.uid, resolved.gid) if switches is None else switches:
        return f"{user}: tasks run as {who}"
    if subordinate is None:
        found = id_map.own_namespace()
        if not isinstance(found, str) and not found.maps(resolved.uid, resolved.gid):
            found = f"{who} is beyond the ids it maps"
        subordinate = found if isinstance(found, str) else ""
    if not subordinate:
        return (
            f"{user}: tasks run as {who} in a user namespace that maps your subordinate ids "
            "(VPC mode: the twin's; loopback mode: the task's own)"
        )
    from fargo.local.twins import machine_uid  # the user's id, also in fargo's namespace

    me = _name_of(machine_uid() if euid is None else euid)
    if one_id is None:
        one_id = id_map.one_id_namespace()
    if not one_id:
        return (
            f"{user}: tasks run as {who} in a user namespace of their own that maps you to "
            f"them: to this machine they are {me} (subordinate ids would make them ids of "
            f"their own, but {subordinate})"
        )
    return (
        f"{user}: not switched: only root can start a task as another user, and fargo "
        f"runs as {me}; tasks run as {me} (a user namespace would map you to it, but "
        f"{one_id}; subordinate ids would switch, but {subordinate})"
    )


def _name_of(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"
