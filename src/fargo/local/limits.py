"""Open-file limits (RLIMIT_NOFILE) for the processes the twin starts.

    raise_open_files(caddy_pid)    # Caddy: soft limit up to the hard limit
    fargate_open_files(task_pid)   # a task: Fargate's 65535, as far as the hard limit allows

A load balancer holds two descriptors per proxied connection, so Caddy runs at the
kernel's ceiling (``fs.nr_open``, 1,048,576 by default) where the twin may raise a hard
limit (``CAP_SYS_RESOURCE``: root), else at its hard limit (``ulimit -Hn``): a listener
full of idle connections must not starve the others (ALB scales far beyond).

A Fargate task gets ``nofile`` 65535 soft and hard by default. A twin task gets the same,
its hard limit raised to it where the twin may, else capped at this machine's: code that
opens more than Fargate allows fails here too.

Limits are set on the running process (``prlimit``), so no code runs between fork and
exec (unsafe with threads) and a wrapper the network mode puts before a task (``nsenter``,
``unshare``, ``sh -c … exec``) keeps them: each execs in the same process.
"""

from __future__ import annotations

import logging
import resource
from collections.abc import Callable

logger = logging.getLogger(__name__)

FARGATE_NOFILE = 65535  # ECS's default ulimit for Fargate tasks, soft and hard


def raise_open_files(pid: int) -> tuple[int, int] | None:
    """Raise ``pid``'s open-file limits to the kernel's ceiling (``fs.nr_open``) where we
    may raise a hard limit, else its soft limit to its hard limit; its limits, None if gone."""
    return _set(pid, lambda hard: (hard, hard), wanted=(_nr_open(),) * 2)


def fargate_open_files(pid: int) -> tuple[int, int] | None:
    """Give ``pid`` Fargate's open-file limit, its hard limit raised to it where we may,
    else capped at it; None if gone."""
    return _set(pid, lambda hard: (min(FARGATE_NOFILE, hard),) * 2, wanted=(FARGATE_NOFILE,) * 2)


def _set(
    pid: int, capped: Callable[[int], tuple[int, int]], *, wanted: tuple[int, int]
) -> tuple[int, int] | None:
    """``wanted`` if ``CAP_SYS_RESOURCE`` allows a hard limit above ``pid``'s, else what
    ``capped`` makes of its hard limit."""
    try:
        _, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        finite = _finite(hard)
        if wanted[1] > finite:
            try:
                resource.prlimit(pid, resource.RLIMIT_NOFILE, wanted)
                return wanted
            except (PermissionError, ValueError):
                pass  # no privilege to raise a hard limit: within it, then
        limits = capped(finite)
        resource.prlimit(pid, resource.RLIMIT_NOFILE, limits)
        return limits
    except ProcessLookupError:
        return None  # it exited at once: its own log says why
    except (OSError, ValueError) as err:
        # Not fatal: the process runs with the limits it inherited.
        logger.warning("could not set the open-file limit of pid %d: %s", pid, err)
        return None


def _finite(hard: int) -> int:
    """An unlimited hard limit stands for the kernel's ceiling (``fs.nr_open``)."""
    return hard if hard != resource.RLIM_INFINITY else _nr_open()


def _nr_open() -> int:
    """The kernel's ceiling for any open-file limit."""
    try:
        with open("/proc/sys/fs/nr_open") as nr_open:
            return int(nr_open.read())
    except (OSError, ValueError):
        return 1 << 20
