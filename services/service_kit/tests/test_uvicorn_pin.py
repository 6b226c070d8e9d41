"""uvicorn's private ``HttpToolsProtocol`` still has the shape ``service_kit.protocol`` needs.

``BatchingHttpToolsProtocol`` subclasses a class uvicorn does not promise to
keep. It relies on: the class living in ``uvicorn.protocols.http.httptools_impl``;
``connection_made(transport)`` storing the transport in ``self.transport`` and
binding ``self.flow`` (read pausing) to it; ``self.loop`` being the event loop;
and every response being written through ``self.transport`` as it is *after*
``connection_made`` (each request's cycle picks it up then).

When a test here fails, the installed uvicorn changed one of these. Keep the
pin (``uvicorn[standard]>=0.30,<0.56`` in pyproject.toml and
services/*/requirements.txt) until ``service_kit/protocol.py`` is adapted and
these pass again; ``bench/services_bench.py`` shows what the protocol is worth.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import pytest
import uvicorn

PRIVATE_MODULE = "uvicorn.protocols.http.httptools_impl"
REQUEST = b"GET /hello HTTP/1.1\r\nHost: test\r\n\r\n"

Message = MutableMapping[str, Any]


def changed(what: str) -> str:
    """The failure message: which uvicorn, what changed, what to do."""
    return (
        f"uvicorn {uvicorn.__version__}: {what}. service_kit.protocol relies on it; "
        "adapt service_kit/protocol.py before widening the uvicorn pin (see this file's docstring)"
    )


class FakeTransport:
    """Records writes; ``written`` is set at the first one."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.written = asyncio.Event()
        self.closed = False
        self.reading_paused = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self.written.set()

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.reading_paused = True

    def resume_reading(self) -> None:
        self.reading_paused = False

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"sockname": ("127.0.0.1", 8080), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )


async def hello(
    scope: Message, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Any]
) -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"5")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"hello"})


def private_class() -> type[asyncio.Protocol]:
    module = importlib.import_module(PRIVATE_MODULE)
    cls = getattr(module, "HttpToolsProtocol", None)
    assert isinstance(cls, type), changed(f"{PRIVATE_MODULE}.HttpToolsProtocol is gone")
    return cls


def protocol(cls: type[asyncio.Protocol]) -> Any:
    """An instance made the way ``uvicorn.Server`` makes one per connection."""
    from uvicorn.server import ServerState

    config = uvicorn.Config(hello, http=cls, lifespan="off", access_log=False, log_level="error")
    config.load()
    try:
        return cls(  # type: ignore[call-arg]
            config=config,
            server_state=ServerState(),
            app_state={},
            _loop=asyncio.get_running_loop(),
        )
    except TypeError as exc:
        pytest.fail(changed(f"HttpToolsProtocol(config, server_state, app_state, _loop): {exc}"))


def test_the_private_class_is_where_the_subclass_finds_it() -> None:
    from service_kit.protocol import BatchingHttpToolsProtocol

    assert issubclass(BatchingHttpToolsProtocol, private_class())


def test_connection_made_takes_only_the_transport() -> None:
    parameters = list(inspect.signature(private_class().connection_made).parameters)

    assert parameters == ["self", "transport"], changed(
        f"connection_made{tuple(parameters)} is not connection_made(self, transport)"
    )


async def test_connection_made_keeps_the_transport_loop_and_flow_control() -> None:
    transport = FakeTransport()
    instance = protocol(private_class())

    instance.connection_made(transport)

    assert getattr(instance, "transport", None) is transport, changed(
        "connection_made no longer stores the transport in self.transport"
    )
    assert getattr(instance, "loop", None) is asyncio.get_running_loop(), changed(
        "self.loop is no longer the event loop"
    )
    flow = getattr(instance, "flow", None)
    assert flow is not None and hasattr(flow, "pause_reading"), changed(
        "self.flow (FlowControl) is no longer set by connection_made"
    )
    flow.pause_reading()
    assert transport.reading_paused, changed(
        "self.flow does not pause reading on the transport given to connection_made"
    )


async def test_each_response_leaves_in_one_write_through_the_subclass() -> None:
    from service_kit.protocol import BatchingHttpToolsProtocol, BatchingTransport

    transport = FakeTransport()
    instance = protocol(BatchingHttpToolsProtocol)
    instance.connection_made(transport)
    assert isinstance(instance.transport, BatchingTransport)

    for request in range(1, 3):  # two requests on one keep-alive connection
        transport.written.clear()
        instance.data_received(REQUEST)
        await asyncio.wait_for(transport.written.wait(), 5)
        await asyncio.sleep(0)  # anything written later in this step would show now

        assert len(transport.writes) == request, changed(
            f"request {request}: the response took {len(transport.writes) - request + 1} "
            "writes: responses no longer go through self.transport as set by connection_made"
        )
        assert transport.writes[-1].startswith(b"HTTP/1.1 200 OK\r\n")
        assert transport.writes[-1].endswith(b"\r\n\r\nhello")

    instance.connection_lost(None)
    assert transport.closed
