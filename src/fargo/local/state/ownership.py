"""Who may have written the state folder: only the current user, or the twin does not trust it.

`fargo down` signals the processes listed in ``pids/`` and `fargo status` believes the
control socket it finds there. A folder another user owns, or one group or others may
write, lets that user plant a pid record (``fargo down`` would kill their choice of
process with our rights) or a socket of their own. So the folder, ``pids/`` and every
pid record must belong to the current user and be writable by nobody else, as ssh asks
of ``~/.ssh``. Root gets no exception: root acting on another user's records is the
worst case.

    check_trusted(state_dir, "the state folder")   # raises StateDirError, saying what to do
"""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

from fargo.local.state.errors import StateDirError

# Bits that let someone other than the owner replace or add entries (or rewrite a file).
WRITABLE_BY_OTHERS = stat.S_IWGRP | stat.S_IWOTH


def check_trusted(path: Path, what: str, *, state_dir: Path) -> os.stat_result:
    """Refuse ``path`` unless the current user owns it and only they may write it.

    A symbolic link is refused too (a record or ``pids/`` swapped for a link points the
    twin elsewhere). Returns the path's status. ``what`` names it in the message;
    ``state_dir`` says which ``--state-dir`` to change. A path that is gone raises
    `FileNotFoundError` (a record may be forgotten while it is looked at).
    """
    try:
        status = path.lstat()
    except FileNotFoundError:
        raise
    except OSError as err:
        raise StateDirError(f"cannot check {what} {path}: {err.strerror or err}") from err
    if path != state_dir and stat.S_ISLNK(status.st_mode):
        raise StateDirError(
            f"{what} {path} is a symbolic link; the twin does not follow links in its state "
            f"folder. Remove it, or choose another --state-dir than {state_dir}"
        )
    if path == state_dir and stat.S_ISLNK(status.st_mode):
        status = path.stat()  # a --state-dir given as a link: what it points at must be ours
    me = os.geteuid()
    if status.st_uid != me:
        raise StateDirError(
            f"{what} {path} belongs to {_user(status.st_uid)}, not to you ({_user(me)}); "
            "the twin acts only on a state folder only you can write, since another user "
            "could plant pid records that `fargo down` would act on. Choose a folder of "
            f"your own with --state-dir (or remove {state_dir} as its owner)"
        )
    if status.st_mode & WRITABLE_BY_OTHERS:
        who = " and ".join(
            name
            for bit, name in ((stat.S_IWGRP, "group"), (stat.S_IWOTH, "others"))
            if status.st_mode & bit
        )
        raise StateDirError(
            f"{what} {path} is writable by {who} (mode {stat.S_IMODE(status.st_mode):04o}); "
            "another user could plant pid records that `fargo down` would act on. "
            f"Run `chmod go-w {path}` or choose another --state-dir"
        )
    return status


def _user(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"
