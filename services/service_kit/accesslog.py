"""One JSON line per request on stdout, cheap enough for the hot path.

A line looks like::

    {"time":1718000000.123,"method":"GET","path":"/api/public","status":200,
     "duration_ms":0.412,"trace_id":"Root=1-5f...","user_agent":"curl/8.5.0"}

(``user_agent`` is what ``fargo logs --no-health-checks`` hides a load balancer's health
checks by: ``ELB-HealthChecker/2.0``, as ALB's.)

Lines go into a large write buffer instead of one ``write(2)`` per request; a
timer flushes it shortly after the first unflushed line, so a quiet service
still shows its log within :data:`FLUSH_INTERVAL_S`.

Logging never fails nor stalls a request. A write the file system refuses (a full
disk: ``ENOSPC``, ``EIO``) drops the buffered lines; a pipe nobody drains keeps at most
:data:`MAX_PENDING_BYTES` waiting (stdout is made non-blocking for this log alone) and
drops the lines beyond. Dropped lines are counted, and once lines are written again one
line says how many went and why::

    {"time":1718000000.456,"access_log_dropped":1532,"reason":"No space left on device"}
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
import time
from json.encoder import encode_basestring_ascii
from typing import Protocol

from service_kit.asgi import TRACE_HEADER, ASGIApp, Receive, Scope, Send, StatusNotingSend

FLUSH_INTERVAL_S = 0.2
USER_AGENT_HEADER = b"user-agent"
BUFFER_BYTES = 64 * 1024
MAX_PENDING_BYTES = 1024 * 1024  # waiting for a full pipe; lines beyond are dropped
PIPE_FULL = "the log pipe is full"

# %-formatting one template is the cheapest way to build the line (no dict, no json.dumps).
_LINE = (
    '{"time":%.3f,"method":%s,"path":%s,"status":%d,"duration_ms":%.3f,"trace_id":%s,'
    '"user_agent":%s}\n'
)


class RawStream(Protocol):
    """What the log writes to: ``write`` returns the bytes taken, or None when a
    non-blocking stream would block (``io.FileIO``, ``io.BytesIO``)."""

    def write(self, data: bytes | bytearray, /) -> int | None: ...


def stdout_stream() -> RawStream:
    """Unbuffered file descriptor 1, non-blocking when it is a pipe (left open on close).

    On Linux a pipe is opened again through ``/proc/self/fd/1``: a description of its own,
    so ``O_NONBLOCK`` holds for this log only, not for ``print`` or the server's logging."""
    fd = sys.stdout.fileno()
    if stat.S_ISFIFO(os.fstat(fd).st_mode):
        try:
            own = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            pass  # no /proc: blocking writes to the shared descriptor
        else:
            return os.fdopen(own, "wb", buffering=0)
    return os.fdopen(fd, "wb", buffering=0, closefd=False)


class AccessLog:
    """Buffered sink for access log lines; call :meth:`flush` at shutdown."""

    def __init__(self, stream: RawStream, *, max_pending: int = MAX_PENDING_BYTES) -> None:
        self._stream = stream
        self._max_pending = max_pending
        self._buffer = bytearray()
        self._flush_scheduled = False
        self._mid_line = False  # the last write ended inside a line
        self._gone = False
        self.dropped = 0
        """Lines dropped since the log was made."""
        self._episode_dropped = 0
        self._episode_reason = ""

    def write(
        self,
        method: str,
        path: str,
        status: int,
        duration_s: float,
        trace_id: str | None,
        user_agent: str | None = None,
    ) -> None:
        """Append one request's line (call it in the event loop, which flushes it soon)."""
        if self._gone:
            return
        if len(self._buffer) >= self._max_pending:
            self._drop_lines(1, PIPE_FULL)
            return
        line = _LINE % (
            time.time(),
            encode_basestring_ascii(method),
            encode_basestring_ascii(path),
            status,
            duration_s * 1000.0,
            "null" if trace_id is None else encode_basestring_ascii(trace_id),
            "null" if user_agent is None else encode_basestring_ascii(user_agent),
        )
        self._buffer += line.encode()
        if len(self._buffer) >= BUFFER_BYTES:
            self.flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_later(FLUSH_INTERVAL_S, self.flush)

    def flush(self) -> None:
        """Write out buffered lines now, as far as the stream takes them without waiting."""
        self._flush_scheduled = False
        while self._buffer:
            try:
                written = self._stream.write(self._buffer)
            except BlockingIOError:
                written = None
            except (BrokenPipeError, ValueError):
                # Nobody reads our stdout any more (or it was closed): drop the lines.
                self._gone = True
                self._buffer.clear()
                return
            except OSError as err:
                self._drop_buffer(os.strerror(err.errno) if err.errno else str(err))
                return
            if written is None:  # a full pipe: try again soon, or drop beyond the cap
                self._retry_later()
                return
            self._mid_line = self._buffer[written - 1] != 0x0A if written else self._mid_line
            del self._buffer[:written]
            if not self._buffer and self._episode_dropped:
                self._buffer += self._dropped_line()

    def _retry_later(self) -> None:
        if self._flush_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # at shutdown, outside the loop: what is left goes
        self._flush_scheduled = True
        loop.call_later(FLUSH_INTERVAL_S, self.flush)

    def _drop_buffer(self, reason: str) -> None:
        """Drop the buffered lines, keeping the rest of a line half written (so the
        stream stays one JSON object a line)."""
        keep = self._buffer.find(b"\n") + 1 if self._mid_line else 0
        lines = self._buffer[keep:].count(b"\n")
        del self._buffer[keep:]
        self._drop_lines(lines, reason)

    def _drop_lines(self, lines: int, reason: str) -> None:
        self.dropped += lines
        if not self._episode_dropped:
            self._episode_reason = reason
        self._episode_dropped += lines

    def _dropped_line(self) -> bytes:
        line = {
            "time": round(time.time(), 3),
            "access_log_dropped": self._episode_dropped,
            "reason": self._episode_reason,
        }
        self._episode_dropped = 0
        return (json.dumps(line, separators=(",", ":")) + "\n").encode()


class AccessLogMiddleware:
    """ASGI middleware writing one :class:`AccessLog` line per HTTP request."""

    def __init__(self, app: ASGIApp, log: AccessLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        noting = StatusNotingSend(send)
        try:
            await self.app(scope, receive, noting)
        finally:
            trace_id = user_agent = None
            for key, value in scope["headers"]:
                if key == TRACE_HEADER:
                    trace_id = value.decode("latin-1")
                elif key == USER_AGENT_HEADER:
                    user_agent = value.decode("latin-1")
            self.log.write(
                scope["method"],
                scope["path"],
                noting.status,
                time.perf_counter() - started,
                trace_id,
                user_agent,
            )
