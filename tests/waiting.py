"""Waiting in tests: on a condition, with a deadline; never a fixed sleep.

    wait_until(lambda: twin.processes() == [], timeout=10, what="every process gone")
    await until(lambda: backend.requests == 1, what="the slow request")
    answer = await until(answered_502, what="a 502")  # an async predicate, its result

Both poll ``predicate`` until it returns something truthy and return that; at the deadline
they fail the test, saying what was awaited and what the predicate last returned. Where
the code under test exposes an event, await that instead.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, overload

T = TypeVar("T")

POLL_SECONDS = 0.02


def _timed_out(what: str, timeout: float, last: object) -> AssertionError:
    return AssertionError(f"timed out after {timeout:g} s waiting for {what} (last: {last!r})")


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, what: str = "the condition") -> T:
    """Call ``predicate`` until it returns something truthy (returned), or fail at ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise _timed_out(what, timeout, last)
        time.sleep(POLL_SECONDS)


@overload
async def until(
    predicate: Callable[[], Awaitable[T]], timeout: float = ..., what: str = ...
) -> T: ...


@overload
async def until(predicate: Callable[[], T], timeout: float = ..., what: str = ...) -> T: ...


async def until(
    predicate: Callable[[], T | Awaitable[T]], timeout: float = 10.0, what: str = "the condition"
) -> T:
    """`wait_until` for async tests: ``predicate`` may be a coroutine function; the loop runs
    between calls."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        last = await result if inspect.isawaitable(result) else result
        if last:
            return last
        if time.monotonic() >= deadline:
            raise _timed_out(what, timeout, last)
        await asyncio.sleep(POLL_SECONDS)
