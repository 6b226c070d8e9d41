"""uvicorn's httptools protocol, sending each response with one ``send()``.

uvicorn writes a response's status line and headers, then its body, with two
``transport.write`` calls, and uvloop sends each at once: two system calls per
response. System calls are what a small response costs most (a third of a
request's CPU time in backend-public under gVisor), so this protocol hands
uvicorn a transport that collects the writes made while the event loop runs
one step and sends them together right after, or as soon as
:data:`MAX_BATCH_BYTES` are waiting. Measured: about 20 % less CPU per request
and 25 % more requests/s on ``/api/public`` and ``/api/private``.

Everything else is uvicorn's, and everything else on the transport (closing,
flow control, addresses) goes to the real one; closing sends what is waiting
first.

``HttpToolsProtocol`` is private to uvicorn, so uvicorn is pinned to the
versions checked (``uvicorn[standard]>=0.30,<0.56``, in pyproject.toml and each
service's requirements.txt), and ``tests/test_uvicorn_pin.py`` fails, saying
what changed, when the installed uvicorn no longer has the shape relied on.
Starlette on stock uvicorn was measured instead and missed the targets
(docs/benchmarks.md, "Service kit vs Starlette").
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_BATCH_BYTES = 64 * 1024


class BatchingTransport:
    """Wraps a transport: ``write`` batches until the loop's next step."""

    __slots__ = ("_batch", "_batched_bytes", "_loop", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self._loop = loop
        self._batch: list[bytes] = []
        self._batched_bytes = 0

    def write(self, data: bytes) -> None:
        """Queue ``data``; it is sent with the other writes of this loop step."""
        if not self._batch:
            self._loop.call_soon(self.flush)
        self._batch.append(data)
        self._batched_bytes += len(data)
        if self._batched_bytes >= MAX_BATCH_BYTES:
            self.flush()

    def flush(self) -> None:
        """Send what is waiting, in one write."""
        if not self._batch:
            return
        data = b"".join(self._batch)
        self._batch.clear()
        self._batched_bytes = 0
        if not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        """Send what is waiting, then close."""
        self.flush()
        self.transport.close()

    def is_closing(self) -> bool:
        """Whether the real transport is closing."""
        return self.transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class BatchingHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` writing through a :class:`BatchingTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # Only writes go through the batch; FlowControl keeps the real transport.
        self.transport = BatchingTransport(transport, self.loop)  # type: ignore[assignment]
