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

import functools
import os
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
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


# Why this process's user namespace maps one id, once `enter_user_namespace` made it.
mapping_problem = ""


def why_not(uid: int | None = None, *, subuid: Path = SUBUID, subgid: Path = SUBGID) -> str:
    """Why `subordinate_ranges` is None (or this process's namespace could not map them),
    as advice; "" when they are there."""
    return mapping_problem or _find(os.geteuid() if uid is None else uid, subuid, subgid)[1]


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


# The helper's exit codes: which map it could not write.
UID_MAP_FAILED = 1
GID_MAP_FAILED = 2  # after the uid map: the namespace cannot be mapped any other way
HELPER_SECONDS = 10.0


# How unshare makes a loopback-mode task's own user namespace: the user its 0, the user's
# first subordinate range its 1 on (newuidmap/newgidmap, util-linux 2.38).
OWN_NAMESPACE = ("--user", "--map-root-user", "--map-auto")


@dataclass(frozen=True)
class OwnNamespace:
    """The ids a user namespace of a task's own maps here: (first id inside, count) ranges."""

    uids: tuple[tuple[int, int], ...]
    gids: tuple[tuple[int, int], ...]

    def maps(self, uid: int, gid: int) -> bool:
        return within(self.uids, uid) and within(self.gids, gid)


@functools.cache
def own_namespace() -> OwnNamespace | str:
    """What ``unshare --user --map-root-user --map-auto`` maps for this user here (a
    loopback-mode task's own namespace), asked of it once; or why it maps nothing more than
    the user (no range, an unshare without ``--map-auto``, user namespaces refused)."""
    if mapping_problem:
        return mapping_problem
    unshare = shutil.which("unshare")
    usage = _output([unshare, "--help"]) if unshare else ""
    if unshare is None or "--map-auto" not in usage:
        return "this machine's unshare cannot map subordinate ids (util-linux 2.38 can)"
    found = subordinate_ranges()
    if found is None:
        return why_not()
    script = "cat /proc/self/uid_map; echo --; cat /proc/self/gid_map"
    said, problem = _run([unshare, *OWN_NAMESPACE, "--mount", "sh", "-c", script])
    if problem:
        return f"a user namespace with your subordinate ids could not be made here ({problem})"
    return parse_maps(said)


@functools.cache
def one_id_namespace() -> str:
    """Why this process may not make a user namespace (and a mount namespace in it) that maps
    its one id, as `fargo.local.images.rootfs` does for a task whose user no namespace maps;
    "" when it may. Asked of ``unshare`` once."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return "unshare (util-linux) is not installed"
    _, problem = _run([unshare, "--user", "--map-root-user", "--mount", "true"])
    return f"a user namespace could not be made here ({problem})" if problem else ""


def _run(argv: list[str]) -> tuple[str, str]:
    """``argv``'s output, and why it failed ("" if it did not): its last line of errors."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return "", str(err)
    if done.returncode != 0:
        return "", (done.stderr.strip().splitlines() or ["no reason given"])[-1]
    return done.stdout, ""


def _output(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout


def parse_maps(text: str) -> OwnNamespace:
    """``uid_map``, a ``--`` line, ``gid_map``: as (first id inside, count) ranges."""
    uid_text, _, gid_text = text.partition("--")
    return OwnNamespace(map_ranges(uid_text), map_ranges(gid_text))


def map_ranges(text: str) -> tuple[tuple[int, int], ...]:
    """An ``uid_map`` or ``gid_map`` (``inside outside count`` lines) as (first id inside,
    count) ranges."""
    rows = [line.split() for line in text.splitlines()]
    return tuple((int(r[0]), int(r[2])) for r in rows if len(r) == 3)


def within(ranges: Sequence[tuple[int, int]], wanted: int) -> bool:
    """Whether one of ``ranges`` ((first id, count) each) holds ``wanted``."""
    return any(first <= wanted < first + count for first, count in ranges)


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
                    os._exit(3)
                for argv, failed in ((uid_args, UID_MAP_FAILED), (gid_args, GID_MAP_FAILED)):
                    child = os.fork()
                    if child == 0:
                        os.execv(argv[0], argv)  # noqa: S606 - shadow's helper, by path
                    if os.waitpid(child, 0)[1] != 0:
                        os._exit(failed)
                os._exit(0)
            except BaseException:
                os._exit(3)
        os.close(self._go_read)

    def map(self) -> None:
        """Have the helper write this process's maps (call after unsharing). Raises
        `MapNotWritten` when nothing was mapped (the caller may map one id itself), or
        `NamespaceError` when the uid map was written and the gid map could not be."""
        try:
            os.write(self._go, b"1")
        except OSError:
            pass  # the helper is gone: its status says why
        finally:
            os.close(self._go)
        code = self._wait()
        if code == 0:
            return
        if code == GID_MAP_FAILED:
            raise NamespaceError(
                "newgidmap could not map the subordinate gids after newuidmap mapped the "
                "uids (see its message above; check /etc/subgid); the process must exit"
            )
        raise MapNotWritten(
            f"newuidmap could not map the subordinate uids (exit status {code}; see its "
            "message above; check /etc/subuid)"
        )

    def cancel(self) -> None:
        """End the helper without mapping (the unshare failed)."""
        os.close(self._go)
        self._wait()

    def _wait(self) -> int:
        deadline = time.monotonic() + HELPER_SECONDS
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self._pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.01)
        os.kill(self._pid, signal.SIGKILL)
        os.waitpid(self._pid, 0)
        return -int(signal.SIGKILL)


class MapNotWritten(NamespaceError):
    """The helper wrote no map: the namespace may still map one id."""
