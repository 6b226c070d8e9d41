"""A full disk under the state folder, reported once: an event and `fargo status`'s ``disk``.

    report = DiskReport(state_dir, router.dropped, events=dropped_events)
    await report.start()       # looks every POLL_SECONDS
    runtime.describe().disk    # DiskStatus: the problem, what was dropped

The writers themselves (the log router, the events file) drop what does not fit and
count it (`fargo.local.logs.dropped`); this part looks at their counts and says so once
per episode: a warning when lines begin to be dropped, one line when the disk has had
room for `ROOM_AGAIN_SECONDS` (a disk at the brim takes some lines and drops others: that
is one episode, not many). The warning reaches the console at once and the events file
when it has room again (its backlog).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from fargo.local.events import about
from fargo.local.logs.dropped import DroppedWrites
from fargo.local.loops import cancel_and_wait, keep_running
from fargo.local.status import DiskStatus

logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0
ROOM_AGAIN_SECONDS = 10.0

Source = Callable[[], DroppedWrites | None]


class DiskReport:
    """Watches what the log writers dropped; one warning per episode of a full disk."""

    name = "disk report"

    def __init__(
        self,
        state_dir: Path,
        router: Source,
        *,
        events: Source,
        room_again_seconds: float = ROOM_AGAIN_SECONDS,
    ) -> None:
        self.state_dir = state_dir
        self.router = router
        self.events = events
        self.room_again_seconds = room_again_seconds
        self.problem: str | None = None
        self.since: float | None = None
        self._last_drop = 0.0
        self._counts = (0, 0)
        self._task: asyncio.Task[None] | None = None

    def validate(self) -> list[str]:
        return []

    async def start(self) -> None:
        self._task = keep_running("disk report", self._watch)

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _watch(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(POLL_SECONDS)

    async def check(self) -> None:
        """Look at the writers' counts once; say so when an episode begins or ends."""
        router = await asyncio.to_thread(self.router)
        events = self.events()
        counts = (router.lines if router else self._counts[0], events.lines if events else 0)
        failing = [w for w in (router, events) if w is not None and w.problem is not None]
        grew = [n > before for n, before in zip(counts, self._counts, strict=True)]
        now = time.monotonic()
        if failing or any(grew):
            self._last_drop = now
            if self.problem is None:
                writers = [w for w in (router, events) if w is not None]
                self.problem = next(
                    (w.problem or w.last_problem for w in failing + writers if w.last_problem),
                    "writes fail",
                )
                self.since = time.time()
                what = " and ".join(
                    name
                    for name, writer in (("task log lines", router), ("events", events))
                    if writer is not None and (writer in failing or writer.lines)
                )
                logger.warning(
                    "the disk of the state folder %s refuses writes: %s. %s are dropped until "
                    "it has room again; the services keep serving. Free some space there "
                    "(`fargo status` counts what was dropped).",
                    self.state_dir,
                    self.problem,
                    (what or "log lines").capitalize(),
                    extra=about("twin", "disk"),
                )
        elif self.problem is not None and now - self._last_drop >= self.room_again_seconds:
            logger.info(
                "the disk of the state folder %s has room again: %d task log lines and %d "
                "events were dropped in all",
                self.state_dir,
                counts[0],
                counts[1],
                extra=about("twin", "disk"),
            )
            self.problem = self.since = None
        self._counts = counts

    def describe(self) -> DiskStatus:
        return DiskStatus(
            problem=self.problem,
            since=None if self.since is None else datetime.fromtimestamp(self.since, UTC),
            dropped_log_lines=self._counts[0],
            dropped_events=self._counts[1],
        )
