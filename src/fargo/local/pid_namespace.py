"""A VPC-mode task's PID namespace, as the twin sees it from outside.

    container_pid(task_pid)     # the process of the task's command (PID 1 inside)
    kill_namespace(task_pid)    # SIGKILL it, and with it every process of the namespace

The task's first process (`fargo.local.images.rootfs`) makes the namespace, runs the
command as its one child and passes signals on. The command dies with it
(``PR_SET_PDEATHSIG``) unless the command changes its own ids, which clears that
setting: so whoever kills a task for good kills the command too.
"""

from __future__ import annotations

import contextlib
import os
import signal

import psutil


def container_pid(pid: int) -> int:
    """The process of the task's command: the one child of the task's first process
    ``pid`` when that process made a PID namespace for it (VPC mode), else ``pid`` (also
    until the child has started, and once it has gone)."""
    try:
        if os.readlink(f"/proc/{pid}/ns/pid_for_children") == os.readlink(f"/proc/{pid}/ns/pid"):
            return pid
        children = psutil.Process(pid).children()
    except (OSError, psutil.Error):
        return pid
    return children[0].pid if len(children) == 1 else pid


def kill_namespace(pid: int) -> None:
    """SIGKILL the command of the task whose first process is ``pid`` (PID 1 of its
    namespace: every process in it dies with it); nothing without a namespace."""
    command = container_pid(pid)
    if command != pid:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(command, signal.SIGKILL)
