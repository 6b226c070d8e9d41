"""The log router: the process that reads every task's output into its log stream.

    python -m fargo.local.logs.router --socket STATE/log-router.sock --logs STATE/logs

The control plane hands it each task's pipe over the unix socket (`attach_pipe`: a
JSON line naming the stream's file, the pipe's read end as SCM_RIGHTS ancillary data;
answered ``ok``). It stamps each line with the time it read it (`fargo.local.logs.lines`),
cuts lines longer than `MAX_LINE_BYTES` as Docker's log drivers do, and appends them to
the stream's file, rotated at `MAX_STREAM_BYTES` (``<task>.log.1`` … ``.<KEEP_ROTATED>``).

It runs in a session of its own: Ctrl-C on a foreground ``fargo up`` does not reach it,
and a killed control plane leaves it reading. A write that fails (a full disk) drops the
lines, counts them, says so once on stderr, and is tried again with the next lines; the
pipes keep being read, so no task blocks on its output. `router_status` asks it (a
JSON line ``{"status": true}`` on the same socket) what it dropped, for `fargo status`.
SIGTERM ends it once every pipe is closed (the tasks have stopped), or after
`DRAIN_SECONDS`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path

from fargo.local.logs.dropped import DroppedWrites, describe
from fargo.local.logs.lines import stamp

MAX_STREAM_BYTES = 10 * 2**20
KEEP_ROTATED = 2
MAX_LINE_BYTES = 16 * 1024  # Docker's log drivers split longer lines
DRAIN_SECONDS = 5.0
ATTACH_TIMEOUT_SECONDS = 5.0


class LogStream:
    """One task's log file: appended to, rotated by size.

    A write the file system refuses (a full disk, ``EIO``) drops the lines it carried
    into ``dropped``, shared by every stream of the router, and never raises: the task's
    pipe keeps being read, so the task never blocks on its output. A line is written
    whole or not at all (a short write is cut back), so the file stays parseable.
    """

    def __init__(
        self, path: Path, *, max_bytes: int, keep: int, dropped: DroppedWrites | None = None
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep
        self.dropped = dropped if dropped is not None else DroppedWrites()
        self._fd: int | None = None
        self._size = 0
        with contextlib.suppress(OSError):  # the stream exists from the start, where it can
            self._open()

    def write(self, data: bytes) -> None:
        """Append whole stamped lines; a file is rotated before it would pass the cap."""
        try:
            while data:
                if self._fd is None:
                    self._open()
                cut = data.rfind(b"\n", 0, max(0, self.max_bytes - self._size)) + 1
                if cut == 0 and self._size:
                    self._rotate()  # not even the next line fits
                    continue
                if cut == 0:  # one line longer than the cap: alone in its file
                    cut = data.find(b"\n") + 1 or len(data)
                self._append(data[:cut])
                data = data[cut:]
        except OSError as err:
            if self.dropped.drop(err, lines=data.count(b"\n") or 1):
                _say(f"log router: {self.path}: {describe(err)}; dropping lines until it has room")
            return
        if self.dropped.wrote():
            _say(f"log router: {self.path}: writing again ({self.dropped.lines} lines dropped)")

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self._size = os.fstat(self._fd).st_size

    def _append(self, chunk: bytes) -> None:
        assert self._fd is not None
        written = 0
        try:
            while written < len(chunk):
                written += os.write(self._fd, chunk[written:])
        except OSError:
            if written:  # a short write left part of a line: take it back
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, self._size)
            raise
        self._size += written

    def _rotate(self) -> None:
        self.close()
        for index in range(self.keep, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{index}")
            newer = self.path.with_name(f"{self.path.name}.{index - 1}") if index > 1 else self.path
            if newer.exists():
                os.replace(newer, older)
        if self.keep == 0:
            self.path.unlink(missing_ok=True)
        self._open()

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


def _say(line: str) -> None:
    """One line on the router's stderr (its own log, maybe on the full disk: best effort)."""
    with contextlib.suppress(OSError):
        os.write(2, line.encode(errors="replace") + b"\n")


class PipeReader(asyncio.Protocol):
    """Reads one task's pipe into its stream, a stamped line at a time."""

    def __init__(self, stream: LogStream, closed: asyncio.Future[None]) -> None:
        self.stream = stream
        self.closed = closed
        self.partial = b""

    def data_received(self, data: bytes) -> None:
        prefix = stamp(datetime.now(UTC))
        *lines, self.partial = (self.partial + data).split(b"\n")
        while len(self.partial) > MAX_LINE_BYTES:
            lines.append(self.partial[:MAX_LINE_BYTES])
            self.partial = self.partial[MAX_LINE_BYTES:]
        if lines:
            self.stream.write(b"".join(prefix + _cut(line) for line in lines))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.partial:
            self.stream.write(stamp(datetime.now(UTC)) + _cut(self.partial))
        self.stream.close()
        if not self.closed.done():
            self.closed.set_result(None)


def _cut(line: bytes) -> bytes:
    """``line`` as stored: at most `MAX_LINE_BYTES` per stored line, each ending in a newline."""
    pieces = [line[i : i + MAX_LINE_BYTES] for i in range(0, len(line), MAX_LINE_BYTES)] or [b""]
    return b"\n".join(pieces) + b"\n"


class Router:
    def __init__(self, socket_path: Path, logs: Path, *, max_bytes: int, keep: int) -> None:
        self.socket_path = socket_path
        self.logs = logs.resolve()
        self.max_bytes = max_bytes
        self.keep = keep
        self.dropped = DroppedWrites()  # every stream's, one episode for the whole disk
        self.open: set[asyncio.Future[None]] = set()
        self.connecting: set[asyncio.Task[object]] = set()  # pipes being connected

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.socket_path.unlink(missing_ok=True)
        # Bound under another name and renamed once listening: the socket's path appearing
        # is what the control plane waits for, and a connect before listen() is refused.
        binding = self.socket_path.with_name(self.socket_path.name + ".new")
        binding.unlink(missing_ok=True)
        old_umask = os.umask(0o177)
        try:
            server.bind(str(binding))
        finally:
            os.umask(old_umask)
        server.listen(64)
        os.replace(binding, self.socket_path)
        bound = os.stat(self.socket_path).st_ino
        server.setblocking(False)
        loop.add_reader(server.fileno(), self._accept, server)
        await stop.wait()
        loop.remove_reader(server.fileno())
        server.close()
        # Only its own socket: after a take-over the path is the new run's router's.
        with contextlib.suppress(FileNotFoundError):
            if os.stat(self.socket_path).st_ino == bound:
                self.socket_path.unlink()
        if self.open:
            await asyncio.wait(self.open, timeout=DRAIN_SECONDS)

    def _accept(self, server: socket.socket) -> None:
        try:
            connection, _ = server.accept()
        except BlockingIOError:
            return
        with connection:
            connection.settimeout(ATTACH_TIMEOUT_SECONDS)
            try:
                message, fds, _, _ = socket.recv_fds(connection, 4096, 1)
                request = json.loads(message)
                if request.get("status") and not fds:
                    connection.sendall(json.dumps(self.dropped.as_dict()).encode() + b"\n")
                    return
                path = self._stream_path(request["stream"])
                if len(fds) != 1:
                    raise ValueError("no pipe came with the request")
                self._read(fds[0], path)
                connection.sendall(b"ok\n")
            except (OSError, ValueError, KeyError, AttributeError) as err:
                for fd in locals().get("fds", []):
                    os.close(fd)
                with contextlib.suppress(OSError):
                    connection.sendall(f"error {err}\n".encode())

    def _stream_path(self, stream: str) -> Path:
        path = (self.logs / stream).resolve()
        if not path.is_relative_to(self.logs) or path.suffix != ".log":
            raise ValueError(f"{stream!r} is not a log stream under {self.logs}")
        return path

    def _read(self, fd: int, path: Path) -> None:
        loop = asyncio.get_running_loop()
        closed: asyncio.Future[None] = loop.create_future()
        self.open.add(closed)
        closed.add_done_callback(self.open.discard)
        stream = LogStream(path, max_bytes=self.max_bytes, keep=self.keep, dropped=self.dropped)
        pipe = os.fdopen(fd, "rb", buffering=0)
        connecting = loop.create_task(
            loop.connect_read_pipe(lambda: PipeReader(stream, closed), pipe)
        )
        self.connecting.add(connecting)
        connecting.add_done_callback(self.connecting.discard)


def attach_pipe(socket_path: Path, stream: str, read_end: int) -> None:
    """Hand ``read_end`` to the router as the pipe of log stream ``stream`` (a path under
    its log folder); raises OSError if the router does not take it."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(ATTACH_TIMEOUT_SECONDS)
        connection.connect(str(socket_path))
        socket.send_fds(connection, [json.dumps({"stream": stream}).encode()], [read_end])
        answer = connection.recv(4096).decode(errors="replace").strip()
    if answer != "ok":
        raise OSError(f"the log router did not take {stream}: {answer or 'no answer'}")


def router_status(socket_path: Path) -> DroppedWrites:
    """What the router at ``socket_path`` dropped so far; raises OSError if it does not
    answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(ATTACH_TIMEOUT_SECONDS)
        connection.connect(str(socket_path))
        connection.sendall(json.dumps({"status": True}).encode())
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = connection.recv(4096)
            if not chunk:
                break
            answer += chunk
    try:
        data = json.loads(answer)
        return DroppedWrites(
            lines=int(data["lines"]),
            problem=data["problem"],
            since=None if data["since"] is None else float(data["since"]),
            last_problem=data["last_problem"],
        )
    except (ValueError, KeyError, TypeError) as err:
        raise OSError(f"the log router answered {answer[:200]!r}") from err


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fargo-log-router")
    parser.add_argument("--socket", type=Path, required=True)
    parser.add_argument("--logs", type=Path, required=True)
    parser.add_argument("--max-bytes", type=int, default=MAX_STREAM_BYTES)
    parser.add_argument("--keep", type=int, default=KEEP_ROTATED)
    args = parser.parse_args(argv)
    router = Router(args.socket, args.logs, max_bytes=args.max_bytes, keep=args.keep)
    asyncio.run(router.run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
