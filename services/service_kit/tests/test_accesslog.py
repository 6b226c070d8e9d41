"""The access log: one JSON object per line, with the request's facts."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from service_kit.accesslog import AccessLog, AccessLogMiddleware
from service_kit.asgi import Message, Request, Response, Service


async def hello(request: Request) -> Response:
    return Response.text("hi")


async def call(app: AccessLogMiddleware, path: str, headers: list[tuple[bytes, bytes]]) -> int:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: dict[str, Any] = {"type": "http", "method": "GET", "path": path, "headers": headers}
    await app(scope, receive, send)
    status: int = sent[0]["status"]
    return status


async def test_one_line_per_request_with_trace_id_or_null() -> None:
    stream = io.BytesIO()
    log = AccessLog(stream)
    app = AccessLogMiddleware(Service({"/": hello}), log)

    await call(
        app, "/", [(b"user-agent", b"ELB-HealthChecker/2.0"), (b"x-amzn-trace-id", b"Root=1-abc")]
    )
    await call(app, '/odd"path\\', [])
    log.flush()

    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["method"] == "GET"
    assert first["path"] == "/"
    assert first["status"] == 200
    assert first["trace_id"] == "Root=1-abc"
    assert first["user_agent"] == "ELB-HealthChecker/2.0"  # what hides health checks
    assert first["duration_ms"] >= 0
    assert isinstance(first["time"], float)
    assert (second["path"], second["status"], second["trace_id"]) == ('/odd"path\\', 404, None)
    assert second["user_agent"] is None


async def test_failing_app_is_logged_as_500() -> None:
    stream = io.BytesIO()
    log = AccessLog(stream)

    async def broken(request: Request) -> Response:
        raise RuntimeError("boom")

    app = AccessLogMiddleware(Service({"/": broken}), log)
    with pytest.raises(RuntimeError, match="boom"):
        await call(app, "/", [])
    log.flush()

    assert json.loads(stream.getvalue())["status"] == 500


class RefusingStream:
    """A stream whose writes fail with ``error`` while ``full``; what it took, as a file
    would have it (``take`` bytes of the next write, then the error)."""

    def __init__(self) -> None:
        self.taken = bytearray()
        self.full = False
        self.take: int | None = None

    def write(self, data: bytes | bytearray) -> int:
        if self.take is not None:
            taken, self.take = self.take, None
            self.taken += data[:taken]
            return taken
        if self.full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.taken += data
        return len(data)


def log_lines(log: AccessLog, count: int, path: str = "/") -> None:
    for _ in range(count):
        log.write("GET", path, 200, 0.001, None)


async def test_a_full_disk_drops_lines_counts_them_and_says_so_once() -> None:
    stream = RefusingStream()
    log = AccessLog(stream)
    log_lines(log, 2, "/before")
    log.flush()
    stream.full = True
    for _ in range(3):
        log_lines(log, 4, "/lost")
        log.flush()  # never raises
    assert log.dropped == 12
    stream.full = False
    log_lines(log, 2, "/after")
    log.flush()
    log_lines(log, 1, "/later")
    log.flush()

    lines = [json.loads(line) for line in stream.taken.splitlines()]
    assert [line.get("path") for line in lines] == [
        "/before",
        "/before",
        "/after",
        "/after",
        None,
        "/later",
    ]
    assert lines[4]["access_log_dropped"] == 12
    assert lines[4]["reason"] == "No space left on device"


async def test_a_line_half_written_when_the_disk_fills_is_finished_later() -> None:
    stream = RefusingStream()
    log = AccessLog(stream)
    log_lines(log, 3, "/x")
    stream.take, stream.full = 30, True  # a short write, then ENOSPC
    log.flush()
    assert log.dropped == 2
    stream.full = False
    log.flush()

    lines = [json.loads(line) for line in stream.taken.splitlines()]
    assert [line.get("path") for line in lines] == ["/x", None]
    assert lines[1]["access_log_dropped"] == 2


async def test_the_real_dev_full_fails_no_request() -> None:
    with open("/dev/full", "wb", buffering=0) as full:
        log = AccessLog(full)
        app = AccessLogMiddleware(Service({"/": hello}), log)
        for _ in range(3):
            assert await call(app, "/", []) == 200
        log.flush()
    assert log.dropped == 3


async def test_a_pipe_nobody_reads_never_blocks_and_keeps_a_bounded_backlog() -> None:
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    os.set_blocking(write_end, False)
    with os.fdopen(read_end, "rb") as reader, os.fdopen(write_end, "wb", buffering=0) as pipe:
        log = AccessLog(pipe, max_pending=64 * 1024)
        for _ in range(20):  # far more than the pipe and the backlog hold; never blocks
            log_lines(log, 1000)
            log.flush()
        assert log.dropped > 0
        taken = bytearray()
        for _ in range(100):  # the reader comes back: the backlog, then the count
            taken += drain(reader.fileno())
            log.flush()
            if taken.endswith(b"}\n") and b"access_log_dropped" in taken:
                break
    lines = [json.loads(line) for line in taken.splitlines()]
    assert lines[-1]["access_log_dropped"] == log.dropped
    assert lines[-1]["reason"] == "the log pipe is full"
    assert len(lines) - 1 + log.dropped == 20_000


def drain(fd: int) -> bytes:
    taken = bytearray()
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(fd, 1 << 20):
            taken += chunk
    return bytes(taken)


def test_stdout_as_a_pipe_is_written_without_blocking_stdout_itself() -> None:
    code = (
        "import os\n"
        "from service_kit.accesslog import stdout_stream\n"
        "s = stdout_stream()\n"
        "print(os.get_blocking(1), os.get_blocking(s.fileno()))\n"
    )
    services = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(services)},
    )
    assert result.stdout.split() == ["True", "False"]
