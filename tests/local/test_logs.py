"""Task logs: the log router process (real pipes, a real process), the streams read back in
time order, rotation, earlier runs, and a full disk."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import pytest
from tests.full_disk import small_tmpfs
from tests.waiting import until, wait_until

from fargo.local.caddy.access_logs import alb_access_logs
from fargo.local.logs import runs
from fargo.local.logs.dropped import DroppedWrites
from fargo.local.logs.health_checks import checked, health_check_paths, is_health_check
from fargo.local.logs.lines import parse, stamp
from fargo.local.logs.log_router import LogRouter
from fargo.local.logs.router import MAX_LINE_BYTES, LogStream
from fargo.local.logs.streams import Follower, find_streams, merged, parse_since
from fargo.local.logs.streams import LogStream as Stream
from fargo.local.state import folder as state
from fargo.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def router(tmp_path: Path) -> AsyncIterator[LogRouter]:
    started = LogRouter(tmp_path, retention_days=1, max_bytes=4096, keep=2)
    await started.start()
    try:
        yield started
    finally:
        await started.stop()


def lines_of(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


async def test_each_line_is_stamped_with_the_time_the_router_read_it(
    router: LogRouter, tmp_path: Path
) -> None:
    log = tmp_path / "logs" / "web" / "a1.log"
    before = datetime.now(UTC) - timedelta(seconds=1)
    with router.attach(log) as pipe:
        pipe.write(b"first\nsecond\npartial")
        pipe.flush()
        wait_until(lambda: len(lines_of(log)) == 2, what="two complete lines")
        pipe.write(b" line\n")
    wait_until(lambda: len(lines_of(log)) == 3, what="the third line")
    events = [parse(line.encode()) for line in lines_of(log)]
    assert [e.message for e in events] == ["first", "second", "partial line"]
    assert all(e.timestamp is not None and e.timestamp >= before for e in events)


async def test_an_unfinished_last_line_is_kept_when_the_task_exits(
    router: LogRouter, tmp_path: Path
) -> None:
    log = tmp_path / "logs" / "web" / "a2.log"
    with router.attach(log) as pipe:
        pipe.write(b"no newline at the end")
    wait_until(lambda: lines_of(log), what="the line")
    assert parse(lines_of(log)[0].encode()).message == "no newline at the end"


async def test_a_long_line_is_cut_as_docker_cuts_it(router: LogRouter, tmp_path: Path) -> None:
    log = tmp_path / "logs" / "web" / "a3.log"
    router_big = LogRouter(tmp_path / "big", retention_days=1)  # default size cap
    await router_big.start()
    try:
        log = tmp_path / "big" / "logs" / "web" / "a3.log"
        with router_big.attach(log) as pipe:
            pipe.write(b"x" * (MAX_LINE_BYTES * 2 + 5) + b"\n")
        wait_until(lambda: len(lines_of(log)) == 3, what="three pieces")
    finally:
        await router_big.stop()
    sizes = [len(parse(line.encode()).message) for line in lines_of(log)]
    assert sizes == [MAX_LINE_BYTES, MAX_LINE_BYTES, 5]


def text_of(path: Path) -> str:
    """A log file's text; none until the router's first line, and for an instant at a
    rotation (between the rename and the new file)."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


async def test_a_stream_is_rotated_by_size_keeping_two_older_files(
    router: LogRouter, tmp_path: Path
) -> None:
    log = tmp_path / "logs" / "web" / "a4.log"
    with router.attach(log) as pipe:
        for number in range(400):  # ~16 KB through a 4 KB cap
            pipe.write(f"line {number:04d}\n".encode())
            pipe.flush()
    wait_until(lambda: "line 0399" in text_of(log), what="the last line")
    files = sorted(p.name for p in log.parent.iterdir())
    assert files == ["a4.log", "a4.log.1", "a4.log.2"]
    assert all(p.stat().st_size <= 4096 for p in log.parent.iterdir())
    stream = Stream("web", "a4", log)
    messages = [e.message for e in merged([stream])]
    numbers = [int(m.split()[1]) for m in messages]
    assert numbers == sorted(numbers) and numbers[-1] == 399 and numbers[0] > 0  # oldest gone


async def test_the_router_is_recorded_and_stops_with_its_part(tmp_path: Path) -> None:
    router = LogRouter(tmp_path, retention_days=1)
    await router.start()
    assert router.process is not None
    pid = router.process.pid
    assert [r.pid for r in state.recorded_processes(tmp_path)] == [pid]
    assert os.getpgid(pid) == pid  # a session of its own: Ctrl-C does not reach it
    await router.stop()
    assert state.recorded_processes(tmp_path) == []
    assert not router.socket_path.exists()


async def test_a_router_stopping_leaves_the_socket_a_newer_router_bound_at_its_path(
    tmp_path: Path,
) -> None:
    """A take-over: the new run's router binds the path; the old run's, swept later, must
    not unlink it (no task could start after that)."""
    old = LogRouter(tmp_path / "old", retention_days=1)
    new = LogRouter(tmp_path / "new", retention_days=1)
    new.socket_path = old.socket_path  # one state folder's path, two runs
    await old.start()
    await new.start()
    try:
        assert old.process is not None
        old.process.terminate()  # as the take-over's sweep does
        old.process.wait(5)
        assert new.socket_path.exists()
        log = new.logs / "web" / "a6.log"
        with new.attach(log) as pipe:
            pipe.write(b"still attached\n")
        wait_until(lambda: lines_of(log), what="the line through the new router")
    finally:
        await new.stop()
        await old.stop()


async def test_a_dead_router_is_started_again_for_the_next_task(
    router: LogRouter, tmp_path: Path
) -> None:
    assert router.process is not None
    router.process.kill()
    router.process.wait()
    log = tmp_path / "logs" / "web" / "a5.log"
    with router.attach(log) as pipe:
        pipe.write(b"after a restart\n")
    wait_until(lambda: lines_of(log), what="the line")


def test_a_full_disk_drops_lines_counts_them_and_says_so_once(
    capfd: pytest.CaptureFixture[str],
) -> None:
    dropped = DroppedWrites()
    stream = LogStream(Path("/dev/full"), max_bytes=2**40, keep=0, dropped=dropped)
    stream.write(b"a\nb\n")
    stream.write(b"c\n")
    stream.close()
    said = capfd.readouterr().err.splitlines()
    assert len(said) == 1 and "No space left on device (ENOSPC)" in said[0]
    assert (dropped.lines, dropped.problem) == (3, "No space left on device (ENOSPC)")


async def test_a_full_file_system_blocks_no_task_and_the_router_counts_what_it_dropped(
    tmp_path: Path,
) -> None:
    with small_tmpfs(tmp_path / "state", size="2m") as disk:
        router = LogRouter(disk.path, retention_days=1)
        await router.start()
        try:
            log = disk.path / "logs" / "web" / "a6.log"
            with router.attach(log) as pipe:
                pipe.write(b"before\n")
                pipe.flush()
                wait_until(lambda: lines_of(log), what="the first line")
                disk.fill()
                line = b"x" * 99 + b"\n"
                await asyncio.wait_for(  # 4 MB through a 2 MB disk: the pipe keeps moving
                    asyncio.to_thread(write_and_flush, pipe, line * 40_000), timeout=30
                )
                seen = wait_until(
                    lambda: (d := router.dropped()) and d.lines >= 30_000 and d, what="drops"
                )
                assert seen.last_problem == "No space left on device (ENOSPC)"
                disk.free()
                pipe.write(b"after\n")
                pipe.flush()
                wait_until(lambda: "after" in lines_of(log)[-1], what="a line after")
            after = router.dropped()
            assert after is not None and after.problem is None and after.lines == seen.lines
            events = list(merged([Stream("web", "a6", log)]))
            assert all(e.timestamp is not None for e in events)  # no torn line
            assert all(e.message in ("before", "after", line.decode().strip()) for e in events)
        finally:
            await router.stop()


def write_and_flush(pipe: IO[bytes], data: bytes) -> None:
    pipe.write(data)
    pipe.flush()


def test_streams_merge_in_time_order_from_a_point_in_time(tmp_path: Path) -> None:
    start = datetime(2026, 12, 3, 4, 0, tzinfo=UTC)
    for service, task, seconds in [("web", "t1", (0, 2, 4)), ("api", "t2", (1, 3))]:
        folder = tmp_path / service
        folder.mkdir(exist_ok=True)
        (folder / f"{task}.log").write_bytes(
            b"".join(
                stamp(start + timedelta(seconds=s)) + f"{task} {s}\n".encode() for s in seconds
            )
        )
    streams = find_streams(tmp_path)
    assert [s.label for s in streams] == ["api/t2", "web/t1"]
    order = [e.message for e in merged(streams)]
    assert order == ["t1 0", "t2 1", "t1 2", "t2 3", "t1 4"]
    later = [e.message for e in merged(streams, since=start + timedelta(seconds=2))]
    assert later == ["t1 2", "t2 3", "t1 4"]


def test_a_follower_reads_new_lines_and_new_tasks(tmp_path: Path) -> None:
    (tmp_path / "web").mkdir()
    old = tmp_path / "web" / "t1.log"
    old.write_bytes(stamp(datetime.now(UTC)) + b"before\n")
    follower = Follower(tmp_path, rescan_seconds=0)
    assert follower.poll() == []
    with old.open("ab") as log:
        log.write(stamp(datetime.now(UTC)) + b"after\n")
    (tmp_path / "web" / "t2.log").write_bytes(stamp(datetime.now(UTC)) + b"new task\n")
    assert [e.message for e in follower.poll()] == ["after", "new task"]


def test_since_takes_a_duration_or_a_time() -> None:
    now = datetime(2026, 12, 3, 4, 0, tzinfo=UTC)
    assert parse_since("10m", now) == now - timedelta(minutes=10)
    assert parse_since("1.5h", now) == now - timedelta(hours=1.5)
    assert parse_since("2026-12-03T03:00:00Z", now) == now - timedelta(hours=1)
    with pytest.raises(ValueError, match="neither a duration"):
        parse_since("yesterday", now)


def test_previous_runs_move_aside_and_the_oldest_are_pruned(tmp_path: Path) -> None:
    for run in range(5):
        (tmp_path / "web").mkdir()
        (tmp_path / "web" / f"t{run}.log").write_text("x\n")
        os.utime(
            tmp_path / "web" / f"t{run}.log", (time.time() - 100 + run, time.time() - 100 + run)
        )
        runs.archive_previous_run(tmp_path, keep=3, retention_days=30)
        assert not (tmp_path / "web").exists()
    kept = sorted((tmp_path / "runs").iterdir())
    assert [sorted(p.name for p in (run / "web").iterdir()) for run in kept] == [
        ["t2.log"],
        ["t3.log"],
        ["t4.log"],
    ]


def test_health_checks_are_known_by_their_user_agents() -> None:
    assert is_health_check('{"path":"/","user_agent":"ELB-HealthChecker/2.0"}')
    assert is_health_check('{"path":"/","user_agent":"fargo-container-health-check"}')
    assert not is_health_check('{"path":"/","user_agent":"curl/8.5.0"}')


@pytest.mark.parametrize(
    "line",
    [
        '127.0.0.1 - - [04/Dec/2026 21:00:00] "GET /health HTTP/1.1" 200 -',  # Werkzeug
        '127.0.0.1:52314 - "GET /health HTTP/1.1" 200 OK',  # uvicorn
        "GET /health 200 1.234 ms - 2",  # Express's morgan (dev)
        "GET /health",  # a bare request line
        '10.1.3.4 - - [04/Dec/2026:21:00:00 +0000] "HEAD /health HTTP/1.1" 200 0',  # gunicorn
    ],
)
def test_a_log_without_the_user_agent_names_a_health_check_by_its_path(line: str) -> None:
    assert is_health_check(line, {"/health"})
    assert not is_health_check(line)  # without the task's paths only the user agent says so


@pytest.mark.parametrize(
    "line",
    [
        '"GET /healthz HTTP/1.1" 200',  # another path that starts the same
        '"GET /api/health HTTP/1.1" 200',
        '"POST /health HTTP/1.1" 200',  # not what a health checker asks
        "health is fine",
        # a user's request, its user agent recorded: shown whatever its path
        '10.1.3.4 - - [04/Dec/2026:21:00:00] "GET /health HTTP/1.1" 200 2 "-" "curl/8.5.0"',
        "WARN retrying GET /health on upstream db",  # the app's own words, not a request
    ],
)
def test_other_requests_are_not_health_checks(line: str) -> None:
    assert not is_health_check(line, {"/health"})


def test_each_service_is_checked_at_its_target_groups_paths_but_slash() -> None:
    """``/`` is a health-check path people ask for too: a ``GET /`` line stays shown."""
    spec = load_spec(ROOT / "tests" / "e2e" / "second.yaml")
    paths = health_check_paths(spec)
    assert paths["web-a"] == paths["web-b"] == {"/health"}
    assert paths["api"] == frozenset()  # in no target group
    spec.target_groups["a"].health_check.path = "/"
    assert health_check_paths(spec)["web-a"] == frozenset()
    assert checked(["/", "/ready", "/live?deep=1"]) == {"/ready", "/live"}


def aged(path: Path, days: float, text: str = "x\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    then = time.time() - days * 86400
    os.utime(path, (then, then))
    return path


def test_a_run_whose_logs_passed_the_retention_goes_even_when_it_is_the_only_one(
    tmp_path: Path,
) -> None:
    aged(tmp_path / "web" / "t1.log", days=40)
    runs.archive_previous_run(tmp_path, keep=3, retention_days=30)
    assert list((tmp_path / "runs").iterdir()) == []
    aged(tmp_path / "web" / "t2.log", days=20)
    kept = runs.archive_previous_run(tmp_path, keep=3, retention_days=30)
    assert kept is not None and list((tmp_path / "runs").iterdir()) == [kept]


def test_logs_past_the_retention_expire_while_the_twin_runs(tmp_path: Path) -> None:
    aged(tmp_path / "web" / "t4.log", days=1)
    recent_run = runs.archive_previous_run(tmp_path, retention_days=7)
    old_run = tmp_path / "runs" / "20200101T000000.000000Z"
    aged(old_run / "web" / "t0.log", days=0)  # its name says when its logs were written
    live = aged(tmp_path / "web" / "t2.log", days=0)
    rotated_recently = aged(tmp_path / "web" / "t2.log.1", days=2)
    old = [
        aged(tmp_path / "web" / "t2.log.2", days=8),
        aged(tmp_path / "web" / "t1.log", days=9),  # a task stopped long ago
        aged(tmp_path / "api" / "t3.log.1", days=8),
    ]
    other = aged(tmp_path / "web" / "notes.txt", days=30)

    gone = runs.expire(tmp_path, retention_days=7)

    assert sorted(gone) == sorted([*old, old_run])
    assert recent_run is not None
    assert all(p.exists() for p in (live, rotated_recently, other, recent_run))


def test_the_load_balancers_rolled_access_logs_past_the_retention_expire_too(
    tmp_path: Path,
) -> None:
    logs = tmp_path / "logs"
    public = alb_access_logs(tmp_path) / "public"
    live = aged(public / "access.log", days=30)  # being written: kept whatever its age
    rolled_recently = aged(public / "access.log.1", days=2)
    old = aged(public / "access.log.2", days=8)
    yesterday = datetime.now(UTC) - timedelta(days=1)
    earlier_run = logs / "runs" / yesterday.strftime(runs.RUN_NAME)
    kept_in_run = aged(earlier_run / "alb" / "public" / "access.log.1", days=2)
    old_in_run = aged(earlier_run / "alb" / "public" / "access.log.2", days=8)

    gone = runs.expire(logs, retention_days=7)

    assert sorted(gone) == sorted([old, old_in_run])
    assert all(p.exists() for p in (live, rolled_recently, kept_in_run))


def test_expiry_follows_no_symlink_out_of_the_logs(tmp_path: Path) -> None:
    logs, elsewhere = tmp_path / "logs", tmp_path / "elsewhere"
    outside = [
        aged(elsewhere / "t1.log", days=9),
        aged(elsewhere / "lb" / "access.log.1", days=9),
        aged(elsewhere / "alb" / "lb" / "access.log.1", days=9),
    ]
    (logs / "alb").mkdir(parents=True)
    (logs / "web").symlink_to(elsewhere)
    (logs / "alb" / "public").symlink_to(elsewhere / "lb")
    run = logs / "runs" / datetime.now(UTC).strftime(runs.RUN_NAME)
    run.mkdir(parents=True)
    (run / "alb").symlink_to(elsewhere / "alb")

    assert runs.expire(logs, retention_days=7) == []
    assert all(p.exists() for p in outside)


async def test_the_router_part_expires_old_logs_and_caps_its_own_while_it_runs(
    tmp_path: Path,
) -> None:
    router = LogRouter(tmp_path, retention_days=1, expire_seconds=0.05, own_log_bytes=1000)
    await router.start()
    try:
        old = aged(tmp_path / "logs" / "web" / "t1.log.1", days=2)
        caddy_log = tmp_path / "logs" / "caddy.log"
        fd = os.open(caddy_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)  # as Caddy holds it
        try:
            os.write(fd, b"old line\n" * 200)
            await until(lambda: not old.exists(), what="the old rotated file deleted")
            await until(lambda: caddy_log.stat().st_size == 0, what="caddy.log capped")
            os.write(fd, b"new line\n")  # the writer goes on at the start of the file
        finally:
            os.close(fd)
        assert caddy_log.read_bytes() == b"new line\n"
        assert (tmp_path / "logs" / "caddy.log.1").read_bytes() == b"old line\n" * 200
    finally:
        await router.stop()
