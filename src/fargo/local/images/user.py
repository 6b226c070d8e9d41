"""A Dockerfile's ``USER`` on this machine: who it names, and what the twin does about it.

    user_note("10001:10001")   # the build-time report for the USER line

A process-based twin cannot honour ``USER`` yet, and says precisely why. Not root: only
root may start a process as another user. Root: the task's files are readable by root
only — the state folder (``.fargo``, owner-only, with the image's files and its Python
environment) and, often, the interpreter the environment links to (pyenv's and uv's
under ``/root``, mode 0700) — so a task switched to another user could not import its
own code. The report also says whether the user exists here (a name in
``/etc/passwd``, or a numeric uid, which Linux needs no entry for).
"""

from __future__ import annotations

import grp
import os
import pwd


def user_note(user: str, *, euid: int | None = None) -> str:
    """What the build reports for ``USER user`` (the twin running as ``euid``)."""
    euid = os.geteuid() if euid is None else euid
    me = _name_of(euid)
    if euid != 0:
        return (
            f"{user}: not switched: only root can start a task as another user, and fargo "
            f"runs as {me}; tasks run as {me}"
        )
    missing = _missing(user)
    known = f"{missing} on this machine; " if missing else ""
    return (
        f"{user}: not switched: {known}the task's files (its image and Python environment "
        "in the owner-only state folder, an interpreter under /root) are readable by root "
        "only; tasks run as root"
    )


def _name_of(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _missing(user: str) -> str:
    """``no user "app"`` when ``user`` (``name``, ``uid``, ``name:group``, ``uid:gid``)
    names a user or group this machine does not have; empty when it has them."""
    name, _, group = user.partition(":")
    if not name.isdigit():
        try:
            pwd.getpwnam(name)
        except KeyError:
            return f'no user "{name}"'
    if group and not group.isdigit():
        try:
            grp.getgrnam(group)
        except KeyError:
            return f'no group "{group}"'
    return ""
