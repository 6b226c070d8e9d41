"""A minimal ASGI toolkit: request and response types, a path router, lifespan.

Speed matters more than features here (the services answer 15k requests/s), so
there is no framework: a :class:`Service` maps exact paths to async handlers::

    async def hello(request: Request) -> Response:
        return Response.text("Hello world")

    app = Service({"/": health, "/api/public": hello})

Only ``GET`` and ``HEAD`` are routed; other methods get 405, unknown paths 404.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Hook = Callable[[], Awaitable[None]]

TRACE_HEADER = b"x-amzn-trace-id"
TEXT_PLAIN = b"text/plain; charset=utf-8"
APPLICATION_JSON = b"application/json"

log = logging.getLogger("service_kit")


def header_value(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    """Return the first value of header ``name`` (lower-case bytes), or ``None``."""
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


class Request:
    """The parts of an ASGI HTTP scope that handlers use."""

    __slots__ = ("headers", "method", "path")

    def __init__(self, scope: Scope) -> None:
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.headers: list[tuple[bytes, bytes]] = scope["headers"]

    def header(self, name: bytes) -> str | None:
        """Value of the header ``name`` (lower-case bytes), or ``None``."""
        return header_value(self.headers, name)

    @property
    def trace_id(self) -> str | None:
        """The ALB's ``X-Amzn-Trace-Id`` header, forwarded on downstream calls."""
        return header_value(self.headers, TRACE_HEADER)


class Response:
    """A complete (non-streamed) HTTP response."""

    __slots__ = ("body", "headers", "status")

    def __init__(
        self,
        status: int,
        body: bytes,
        content_type: bytes = TEXT_PLAIN,
        headers: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        self.status = status
        self.body = body
        self.headers: list[tuple[bytes, bytes]] = [
            (b"content-type", content_type),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ]

    @classmethod
    def text(cls, text: str, status: int = 200) -> Response:
        """A ``text/plain`` response."""
        return cls(status, text.encode())

    @classmethod
    def json(
        cls,
        payload: Mapping[str, object],
        status: int = 200,
        headers: Iterable[tuple[bytes, bytes]] = (),
    ) -> Response:
        """An ``application/json`` response."""
        return cls(status, json.dumps(payload).encode(), APPLICATION_JSON, headers)

    async def send(self, send: Send, *, head: bool = False) -> None:
        """Send the response over ASGI (no body for ``HEAD``)."""
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": b"" if head else self.body})


Handler = Callable[[Request], Awaitable[Response]]


class StatusNotingSend:
    """An ASGI ``send`` that notes the response's status as it goes by: 500 until one is
    sent (what the server answers when the app fails before responding)."""

    __slots__ = ("send", "status")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.status = 500

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self.send(message)


NOT_FOUND = Response.json({"error": "not found"}, 404)
METHOD_NOT_ALLOWED = Response.json(
    {"error": "method not allowed"}, 405, headers=[(b"allow", b"GET, HEAD")]
)


class Service:
    """An ASGI app: exact-path routing for GET/HEAD plus lifespan hooks.

    ``on_startup`` hooks run in order when the server starts (a failing hook
    aborts start-up with its message); ``on_shutdown`` hooks run in reverse
    order after the last request, each even if an earlier one failed.
    """

    def __init__(
        self,
        routes: Mapping[str, Handler],
        *,
        on_startup: Iterable[Hook] = (),
        on_shutdown: Iterable[Hook] = (),
    ) -> None:
        self.routes = dict(routes)
        self.on_startup = list(on_startup)
        self.on_shutdown = list(on_shutdown)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            handler = self.routes.get(scope["path"])
            method = scope["method"]
            if handler is None:
                response = NOT_FOUND
            elif method == "GET" or method == "HEAD":
                response = await handler(Request(scope))
            else:
                response = METHOD_NOT_ALLOWED
            await response.send(send, head=method == "HEAD")
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    for hook in self.on_startup:
                        await hook()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for hook in reversed(self.on_shutdown):
                    try:
                        await hook()
                    except Exception:
                        log.exception("shutdown hook %r failed", hook)
                await send({"type": "lifespan.shutdown.complete"})
                return
