"""Subordinate ids: the uid and gid ranges ``/etc/subuid`` and ``/etc/subgid`` give a user,
mapped into the twin's user namespace by shadow's setuid helpers ``newuidmap`` and
``newgidmap``, as rootless Docker and Podman map them. Inside, ids 1 to the range's size
are real ids (of the range), so the twin, uid 0 there, can start a task as the user an
image's ``USER`` names; without them the namespace maps one id, and every task runs as
the user running fargo.

    ranges = subordinate_ranges()           # None, with `why_not`, when there are none
    mapper = IdMapper(ranges)               # forks the helper: while single-threaded
    unshare(CLONE_NEWUSER)
    mapper.map()                            # the helper maps us; raises NamespaceError
"""

from __future__ import annotations

import os
import pwd
import shutil
from dataclasses import dataclass
from pathlib import Path

from fargo.local.ec2.errors import NamespaceError

SUBUID = Path("/etc/subuid")
SUBGID = Path("/etc/subgid")
# Enough for the ids images use (10001, 65534 …); a range may be larger.
MIN_RANGE = 65536


@dataclass(frozen=True)
class Range:
    start: int
    count: int


@dataclass(frozen=True)
class SubordinateRanges:
    """A user's uid and gid ranges, and the helpers that map them."""

    uids: Range
    gids: Range
    newuidmap: str
    newgidmap: str


def subordinate_range(path: Path, name: str, uid: int) -> Range | None:
    """The first range of ``name`` (or its uid) in ``path`` (``user:start:count`` lines)
    with at least `MIN_RANGE` ids; None if there is none or the file is unreadable."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        owner, _, rest = line.strip().partition(":")
        start, _, count = rest.partition(":")
        numbers = start.isdigit() and count.isdigit()
        if owner in (name, str(uid)) and numbers and int(count) >= MIN_RANGE:
            return Range(int(start), int(count))
    return None


def subordinate_ranges(
    uid: int | None = None, *, subuid: Path = SUBUID, subgid: Path = SUBGID
) -> SubordinateRanges | None:
    """This user's ranges and helpers, or None (`why_not` says why)."""
    return _find(os.geteuid() if uid is None else uid, subuid, subgid)[0]


def why_not(uid: int | None = None, *, subuid: Path = SUBUID, subgid: Path = SUBGID) -> str:
    """Why `subordinate_ranges` is None, as advice; "" when it is not."""
    return _find(os.geteuid() if uid is None else uid, subuid, subgid)[1]


def _find(uid: int, subuid: Path, subgid: Path) -> tuple[SubordinateRanges | None, str]:
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = str(uid)
    newuidmap, newgidmap = shutil.which("newuidmap"), shutil.which("newgidmap")
    if newuidmap is None or newgidmap is None:
        return None, "newuidmap and newgidmap are not installed (Debian: apt-get install uidmap)"
    uids = subordinate_range(subuid, name, uid)
    gids = subordinate_range(subgid, name, uid)
    if uids is None or gids is None:
        return None, (
            f"{name} has no subordinate id range of {MIN_RANGE} in {subuid} and {subgid} "
            f"(as root: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {name})"
        )
    return SubordinateRanges(uids, gids, newuidmap, newgidmap), ""


class IdMapper:
    """A helper forked before ``unshare(CLONE_NEWUSER)``: once told, it runs newuidmap and
    newgidmap on this process (a process outside the namespace must write its maps)."""

    def __init__(self, ranges: SubordinateRanges) -> None:
        uid, gid = os.geteuid(), os.getegid()
        target = str(os.getpid())
        uid_args = [ranges.newuidmap, target, "0", str(uid), "1"]
        uid_args += ["1", str(ranges.uids.start), str(ranges.uids.count)]
        gid_args = [ranges.newgidmap, target, "0", str(gid), "1"]
        gid_args += ["1", str(ranges.gids.start), str(ranges.gids.count)]
        self._go_read, self._go = os.pipe()
        self._pid = os.fork()
        if self._pid == 0:  # the helper: no Python machinery past this point but exec
            os.close(self._go)
            try:
                if os.read(self._go_read, 1) != b"1":
                    os._exit(2)
                for argv in (uid_args, gid_args):
                    child = os.fork()
                    if child == 0:
                        os.execv(argv[0], argv)  # noqa: S606 - shadow's helper, by path
                    if os.waitpid(child, 0)[1] != 0:
                        os._exit(1)
                os._exit(0)
            except BaseException:
                os._exit(3)
        os.close(self._go_read)

    def map(self) -> None:
        """Have the helper write this process's maps (call after unsharing)."""
        os.write(self._go, b"1")
        os.close(self._go)
        _, status = os.waitpid(self._pid, 0)
        if status != 0:
            raise NamespaceError(
                f"newuidmap/newgidmap could not map the subordinate ids (status {status})"
            )

    def cancel(self) -> None:
        """End the helper without mapping (the unshare failed)."""
        os.close(self._go)
        os.waitpid(self._pid, 0)
