"""``fargo up --detach``: the control plane forked into a session of its own, in the
background, its output going to the state folder's log.

    pid = fork_detached(config, state_dir / "logs" / "control-plane.log")

This module imports little, so the command forks before it loads the control plane.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

from fargo.local.config import TwinConfig

EXIT_START_FAILED = 3
EXIT_ALREADY_RUNNING = 4  # `fargo up --detach` tells "already up" apart from a failed start


def fork_detached(config: TwinConfig, log_path: Path) -> int:
    """Run `fargo.local.control.daemon.run` in a child process of its own session, its
    output going to ``log_path``; returns the child's pid. Call it with no thread running.

    The child starts with every module this process imported, so it serves sooner than a
    new interpreter would; it imports the control plane itself (aiohttp, the runtime:
    0.3-0.4 s), while this process builds the images on the other core."""
    sys.stdout.flush()
    sys.stderr.flush()
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    pid = os.fork()
    if pid:
        os.close(log)
        return pid
    code = 1
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # nothing of the caller's (pipes) stays
        from fargo.local.control.daemon import run

        code = run(config)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
