"""A task's process group: waiting for its port, stopping it as ECS does, its log.

A task runs as the leader of a process group of its own (`NetworkMode.launch`), so
signals go to the group: workers and forked children stop with the task and do not
keep its address and port. In VPC mode that leader runs the task's command as PID 1 of
a PID namespace of the task's own, in a group of its own, and passes signals on to it
(`fargo.local.images.rootfs`): `fargo.local.pid_namespace.container_pid` is the
command's process, whose namespaces, user, environment and resources are the task's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

from fargo.local.limits import fargate_open_files
from fargo.local.pid_namespace import kill_namespace

OpenConnection = Callable[[str, int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]

LISTEN_POLL_SECONDS = 0.02


async def spawn_task(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, log: IO[bytes]
) -> asyncio.subprocess.Process:
    """A task's process: the leader of a process group of its own, its output into its log
    file, no stdin, Fargate's open-file limit (`fargo.local.limits`). A network mode
    prefixes ``argv`` with how to enter the task's ENI."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=log,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    fargate_open_files(process.pid)
    return process


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the process group ``pid`` leads; nothing if it is gone.

    The group outlives its leader while members remain, and Linux does not hand out
    a pid that is still some group's id, so this is safe after the leader exited.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def terminate(process: asyncio.subprocess.Process, stop_timeout: float) -> None:
    """SIGTERM to the group, up to ``stop_timeout`` for the leader to exit, then SIGKILL
    to whatever is left of the group (always: the leader's exit ends the task)."""
    if process.returncode is None:
        signal_group(process.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), timeout=stop_timeout)
    kill_namespace(process.pid)  # its command, should it have cleared its death signal
    signal_group(process.pid, signal.SIGKILL)
    await process.wait()


async def wait_listening(
    host: str,
    port: int,
    process: asyncio.subprocess.Process,
    *,
    timeout: float,
    still_wanted: Callable[[], bool],
    open_connection: OpenConnection = asyncio.open_connection,
) -> bool:
    """Whether ``host:port`` accepts a connection within ``timeout``; False at once if the
    process exits or the task is no longer wanted. ``open_connection`` is the network
    mode's: the probe comes from where the load balancer sits."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline and still_wanted() and process.returncode is None:
        with contextlib.suppress(OSError):
            _, writer = await open_connection(host, port)
            writer.close()
            return still_wanted()
        await asyncio.sleep(LISTEN_POLL_SECONDS)
    return False
