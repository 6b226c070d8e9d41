"""Background loops that never die silently.

    task = keep_running("ecs:backend-private", scheduler.reconcile_forever)
    await cancel_and_wait(task)   # at stop

A loop that raises (or returns, which a loop should never do) is logged with its
traceback as an event and started again after a pause that doubles up to
`MAX_PAUSE_SECONDS`; it stops only when its task is cancelled. Config pushes, health
checks, the schedulers and the Caddy watchdog all run this way, so one bug in one
loop degrades one part instead of freezing it without a word.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger(__name__)

FIRST_PAUSE_SECONDS = 0.1
MAX_PAUSE_SECONDS = 5.0
HEALTHY_RUN_SECONDS = 30.0  # a loop that ran this long starts again from the first pause


def keep_running(
    name: str,
    loop: Callable[[], Awaitable[Any]],
    *,
    extra: dict[str, str] | None = None,
) -> asyncio.Task[None]:
    """Run ``loop`` in a task of its own, restarting it whenever it fails."""
    return asyncio.create_task(_restarting(name, loop, extra or {}), name=name)


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` (None: nothing to do) and wait until it has ended."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _restarting(name: str, loop: Callable[[], Awaitable[Any]], extra: dict[str, str]) -> None:
    pause = FIRST_PAUSE_SECONDS
    while True:
        began = time.monotonic()
        try:
            await loop()
            logger.error("background loop %s ended; starting it again", name, extra=extra)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("background loop %s failed; starting it again", name, extra=extra)
        if time.monotonic() - began > HEALTHY_RUN_SECONDS:
            pause = FIRST_PAUSE_SECONDS
        await asyncio.sleep(pause)
        pause = min(pause * 2, MAX_PAUSE_SECONDS)
