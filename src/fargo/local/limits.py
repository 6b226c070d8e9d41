"""Open-file limits (RLIMIT_NOFILE) for the processes the twin starts.

    raise_open_files(caddy_pid)    # Caddy: soft limit up to the hard limit
    fargate_open_files(task_pid)   # a task: Fargate's 65535, as far as the hard limit allows

A load balancer holds two descriptors per proxied connection, so Caddy runs at the hard
limit: a listener full of idle connections must not starve the others (ALB scales far
beyond). Only the soft limit can be raised without privileges; a hard limit needs
``CAP_SYS_RESOURCE`` (``ulimit -Hn`` says what this machine allows).

A Fargate task gets ``nofile`` 65535 soft and hard by default. A twin task gets the same,
capped at the hard limit of this machine: code that opens more than Fargate allows
fails here too, and code that needs no more than this machine allows runs.

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
    """Raise ``pid``'s soft open-file limit to its hard limit; its limits, None if gone."""
    return _set(pid, lambda hard: (hard, hard))


def fargate_open_files(pid: int) -> tuple[int, int] | None:
    """Give ``pid`` Fargate's open-file limit, capped at its hard limit; None if gone."""
    return _set(pid, lambda hard: (min(FARGATE_NOFILE, hard),) * 2)


def _set(pid: int, limits: Callable[[int], tuple[int, int]]) -> tuple[int, int] | None:
    try:
        _, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        wanted = limits(_finite(hard))
        resource.prlimit(pid, resource.RLIMIT_NOFILE, wanted)
        return wanted
    except ProcessLookupError:
        return None  # it exited at once: its own log says why
    except (OSError, ValueError) as err:
        # Not fatal: the process runs with the limits it inherited.
        logger.warning("could not set the open-file limit of pid %d: %s", pid, err)
        return None


def _finite(hard: int) -> int:
    """An unlimited hard limit stands for the kernel's ceiling (``fs.nr_open``)."""
    if hard != resource.RLIM_INFINITY:
        return hard
    try:
        with open("/proc/sys/fs/nr_open") as nr_open:
            return int(nr_open.read())
    except (OSError, ValueError):
        return 1 << 20
