"""Stopping a child process the twin started: SIGTERM, then SIGKILL after a timeout."""

from __future__ import annotations

import asyncio
import contextlib
import signal


async def terminate(process: asyncio.subprocess.Process, timeout: float) -> None:
    """Ask ``process`` to stop (SIGTERM); kill it if it has not exited within ``timeout``
    seconds. Returns once it has exited; nothing happens if it already had."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
