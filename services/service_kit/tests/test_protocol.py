"""The batching transport: one write per loop step, nothing lost on close."""

from __future__ import annotations

import asyncio
from typing import cast

from service_kit.protocol import MAX_BATCH_BYTES, BatchingTransport


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def batching() -> tuple[BatchingTransport, FakeTransport]:
    fake = FakeTransport()
    transport = cast(asyncio.Transport, fake)
    return BatchingTransport(transport, asyncio.get_running_loop()), fake


async def test_writes_of_one_loop_step_are_sent_together() -> None:
    transport, fake = batching()

    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(b"body")
    assert fake.writes == []
    await asyncio.sleep(0)

    assert fake.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]


async def test_close_sends_what_is_waiting_first() -> None:
    transport, fake = batching()

    transport.write(b"last words")
    transport.close()

    assert (fake.writes, fake.closed) == ([b"last words"], True)
    await asyncio.sleep(0)
    assert fake.writes == [b"last words"]  # the scheduled flush finds nothing left


async def test_a_large_batch_is_sent_at_once() -> None:
    transport, fake = batching()

    transport.write(b"x" * MAX_BATCH_BYTES)

    assert len(fake.writes) == 1


async def test_nothing_is_written_to_a_closing_transport_and_the_rest_is_delegated() -> None:
    transport, fake = batching()
    fake.closed = True

    transport.write(b"too late")
    await asyncio.sleep(0)

    assert fake.writes == []
    assert transport.is_closing()
    assert transport.get_extra_info("peername") == "info:peername"
