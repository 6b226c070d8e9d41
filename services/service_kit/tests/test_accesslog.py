"""The access log: one JSON object per line, with the request's facts."""

from __future__ import annotations

import io
import json
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
