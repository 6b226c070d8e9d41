"""The control plane's events: one logging setup, the events file, `fargo events`, loops
that restart instead of dying silently."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from fargo.cli import main
from fargo.local import loops
from fargo.local.events import (
    BACKLOG_EVENTS,
    EVENTS_FILE,
    Event,
    EventFileHandler,
    about,
    configure_logging,
    event_files,
    parse_events,
    remove_handlers,
)

logger = logging.getLogger("fargo.local.test")


def read_events(state_dir: Path, *, subject: str | None = None) -> list[Event]:
    """Every kept event, oldest first (as `fargo events --json` prints them)."""
    events: list[Event] = []
    for path in event_files(state_dir):
        with path.open(encoding="utf-8") as lines:
            events += [e for e in parse_events(iter(lines)) if subject in (None, e.subject)]
    return events


@pytest.fixture
def console(tmp_path: Path) -> Iterator[io.StringIO]:
    out = io.StringIO()
    handlers = configure_logging(tmp_path, console=out)
    yield out
    remove_handlers(handlers)


def test_an_event_goes_to_the_file_and_the_console_timestamped(
    tmp_path: Path, console: io.StringIO
) -> None:
    logger.info("started task %s at %s", "3f2a", "127.0.10.4:8090", extra=about("service", "api"))
    logger.warning("caddy exited; restarting", extra=about("load-balancer", "data plane"))

    events = read_events(tmp_path)
    assert [(e.source, e.subject, e.message) for e in events] == [
        ("service", "api", "started task 3f2a at 127.0.10.4:8090"),
        ("load-balancer", "data plane", "caddy exited; restarting"),
    ]
    assert events[0].time.endswith("Z") and events[0].level == "INFO"
    lines = console.getvalue().splitlines()
    assert lines[0].endswith(" (service api) started task 3f2a at 127.0.10.4:8090")
    assert lines[0][:12].count(":") == 2 and lines[0][8] == "."  # HH:MM:SS.mmm
    assert "WARNING: (load-balancer data plane) caddy exited" in lines[1]
    assert [e.subject for e in read_events(tmp_path, subject="api")] == ["api"]


def test_loggers_outside_fargo_are_not_events(tmp_path: Path, console: io.StringIO) -> None:
    logging.getLogger("aiohttp.access").warning("not ours")
    assert read_events(tmp_path) == []


def test_the_file_rotates_and_both_generations_are_read(tmp_path: Path) -> None:
    handler = EventFileHandler(tmp_path / EVENTS_FILE, max_bytes=300)
    record = logging.LogRecord("fargo.x", logging.INFO, __file__, 1, "event %d", (0,), None)
    for number in range(10):
        record.args = (number,)
        handler.emit(record)
    assert (tmp_path / (EVENTS_FILE + ".1")).exists()
    assert (tmp_path / EVENTS_FILE).stat().st_size <= 300 + 200
    messages = [e.message for e in read_events(tmp_path)]
    assert messages == sorted(messages, key=lambda m: int(m.split()[1]))  # oldest first
    assert messages[-1] == "event 9"


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    good = {"time": "t", "level": "INFO", "source": "twin", "subject": "", "message": "ok"}
    (tmp_path / EVENTS_FILE).write_text(json.dumps(good) + '\n{"time": "t", "lev')
    assert [e.message for e in read_events(tmp_path)] == ["ok"]


def test_fargo_events_filters_by_service_and_prints_json(
    tmp_path: Path, console: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    logger.info("started task a", extra=about("service", "api"))
    logger.info("started task b", extra=about("service", "web"))

    assert main(["events", "--state-dir", str(tmp_path), "--service", "web"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].endswith("(service web) started task b")

    assert main(["events", "--state-dir", str(tmp_path), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["subject"] for r in rows] == ["api", "web"]


def test_fargo_events_without_a_twin_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["events", "--state-dir", str(tmp_path / "none")]) == 1
    assert "no events" in capsys.readouterr().err


async def test_a_failing_loop_is_logged_and_started_again(
    tmp_path: Path, console: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loops, "FIRST_PAUSE_SECONDS", 0.01)
    runs = 0
    third = asyncio.Event()

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs >= 3:
            third.set()
            await asyncio.Event().wait()  # then it runs as a loop should, until cancelled
        raise ValueError(f"bug number {runs}")

    task = loops.keep_running("flaky loop", flaky, extra=about("service", "api"))
    await asyncio.wait_for(third.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    failures = [e for e in read_events(tmp_path) if "flaky loop failed" in e.message]
    assert [e.level for e in failures] == ["ERROR", "ERROR"]
    assert "bug number 1" in failures[0].message and failures[0].subject == "api"
    assert "Traceback" in console.getvalue()


def test_events_the_disk_refuses_wait_and_are_written_in_order_when_it_has_room(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = EventFileHandler(tmp_path / EVENTS_FILE)
    logger.addHandler(handler)
    try:
        logger.warning("before")
        real_append = EventFileHandler._append
        full = True

        def append(self: EventFileHandler, data: bytes) -> None:
            if full:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            real_append(self, data)

        monkeypatch.setattr(EventFileHandler, "_append", append)
        for number in range(BACKLOG_EVENTS + 5):  # never raises
            logger.warning("while full %d", number)
        assert handler.dropped.problem == "No space left on device (ENOSPC)"
        assert handler.dropped.lines == 5  # pushed out of the backlog
        full = False
        logger.warning("after")
    finally:
        logger.removeHandler(handler)
    messages = [e.message for e in read_events(tmp_path)]
    assert messages[0] == "before" and messages[-1] == "after"
    # "after" waited its turn in the full backlog too: one more of the oldest went
    assert messages[1:-1] == [f"while full {n}" for n in range(6, BACKLOG_EVENTS + 5)]
    assert handler.dropped.problem is None and handler.dropped.lines == 6


def test_a_console_on_a_full_disk_drops_its_lines_without_a_traceback(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    full = open("/dev/full", "w", buffering=1)  # noqa: SIM115 - closing it fails too
    handlers = configure_logging(tmp_path, console=full)
    try:
        logger.warning("not shown")
    finally:
        remove_handlers(handlers)
        with contextlib.suppress(OSError):
            full.close()
    assert capfd.readouterr().err == ""
    assert [e.message for e in read_events(tmp_path)] == ["not shown"]
