"""A full disk under the state folder, reported once per episode (`DiskReport`), from what
the log writers counted (`DroppedWrites`)."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from pathlib import Path

import pytest

from fargo.local.logs.disk_report import DiskReport
from fargo.local.logs.dropped import DroppedWrites

ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


async def test_a_disk_at_the_brim_is_one_warning_and_one_line_when_it_has_room(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    router, events = DroppedWrites(), DroppedWrites()
    report = DiskReport(tmp_path, lambda: router, events=lambda: events, room_again_seconds=0.2)
    caplog.set_level(logging.INFO, logger="fargo.local.logs.disk_report")
    await report.check()
    assert report.describe().problem is None

    for _ in range(3):  # it takes a line now and then, drops the others: one episode
        router.drop(ENOSPC, lines=10)
        await report.check()
        router.wrote()
        await report.check()
    events.drop(ENOSPC, lines=0)
    await report.check()

    said = warnings_of(caplog)
    assert len(said) == 1
    assert "No space left on device (ENOSPC)" in said[0] and str(tmp_path) in said[0]
    assert "Task log lines are dropped" in said[0] and "the services keep serving" in said[0]
    status = report.describe()
    assert status.problem == "No space left on device (ENOSPC)" and status.since is not None
    assert status.dropped_log_lines == 30

    events.wrote()
    caplog.clear()
    for _ in range(100):
        await report.check()
        if report.describe().problem is None:
            break
        await asyncio.sleep(0.05)
    assert [r.getMessage() for r in caplog.records] == [
        f"the disk of the state folder {tmp_path} has room again: 30 task log lines and 0 "
        "events were dropped in all"
    ]

    router.drop(ENOSPC, lines=1)  # full again: a new episode, a new warning
    await report.check()
    assert len(warnings_of(caplog)) == 1


async def test_a_router_that_does_not_answer_is_no_disk_problem(tmp_path: Path) -> None:
    report = DiskReport(tmp_path, lambda: None, events=lambda: None)
    await report.check()
    assert report.describe().model_dump() == {
        "problem": None,
        "since": None,
        "dropped_log_lines": 0,
        "dropped_events": 0,
    }
