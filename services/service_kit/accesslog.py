"""One JSON line per request on stdout, cheap enough for the hot path.

A line looks like::

    {"time":1718000000.123,"method":"GET","path":"/api/public","status":200,
     "duration_ms":0.412,"trace_id":"Root=1-5f...","user_agent":"curl/8.5.0"}

(``user_agent`` is what ``fargo logs --no-health-checks`` hides a load balancer's health
checks by: ``ELB-HealthChecker/2.0``, as ALB's.)

Lines go into a large write buffer instead of one ``write(2)`` per request; a
timer flushes it shortly after the first unflushed line, so a quiet service
still shows its log within :data:`FLUSH_INTERVAL_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from json.encoder import encode_basestring_ascii
from typing import BinaryIO

from service_kit.asgi import TRACE_HEADER, ASGIApp, Message, Receive, Scope, Send

FLUSH_INTERVAL_S = 0.2
USER_AGENT_HEADER = b"user-agent"
BUFFER_BYTES = 64 * 1024

# %-formatting one template is the cheapest way to build the line (no dict, no json.dumps).
_LINE = (
    '{"time":%.3f,"method":%s,"path":%s,"status":%d,"duration_ms":%.3f,"trace_id":%s,'
    '"user_agent":%s}\n'
)


def stdout_stream() -> BinaryIO:
    """A large-buffered binary stream on file descriptor 1 (left open on close)."""
    return os.fdopen(sys.stdout.fileno(), "wb", buffering=BUFFER_BYTES, closefd=False)


class AccessLog:
    """Buffered sink for access log lines; call :meth:`flush` at shutdown."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._flush_scheduled = False

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
        line = _LINE % (
            time.time(),
            encode_basestring_ascii(method),
            encode_basestring_ascii(path),
            status,
            duration_s * 1000.0,
            "null" if trace_id is None else encode_basestring_ascii(trace_id),
            "null" if user_agent is None else encode_basestring_ascii(user_agent),
        )
        try:
            self._stream.write(line.encode())
        except (BrokenPipeError, ValueError):
            return  # stdout is gone (reader exited, or closed): logging must not fail requests
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_later(FLUSH_INTERVAL_S, self.flush)

    def flush(self) -> None:
        """Write out buffered lines now."""
        self._flush_scheduled = False
        # Nobody reads our stdout any more (or it was closed): drop the lines.
        with contextlib.suppress(BrokenPipeError, ValueError):
            self._stream.flush()


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
        status = 500  # what the server answers if the app fails before responding

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
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
                status,
                time.perf_counter() - started,
                trace_id,
                user_agent,
            )
