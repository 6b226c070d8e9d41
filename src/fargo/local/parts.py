"""One lifecycle for every part of the twin, and the composition that runs them.

    class DnsServer:                       # any part
        name = "discovery DNS server"
        def validate(self) -> list[str]: ...   # fast, no side effects: problems found
        async def start(self) -> None: ...
        async def stop(self) -> None: ...      # idempotent, safe after a failed start

    parts = Parts([dns, metadata, load_balancers, cluster])
    parts.validate()        # raises PartsInvalid listing every problem of every part
    await parts.start()     # in order; if one fails, those started stop (reverse) and it raises
    await parts.stop()      # reverse order; each part stops even if another failed to

As Caddy's modules do (provision → validate → cleanup), a part checks what it can
before anything starts (ports, names, socket paths), so a bad setting fails fast
and leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

logger = logging.getLogger(__name__)
SLOW_STOP_SECONDS = 10.0


class Part(Protocol):
    """A long-lived component of the twin."""

    @property
    def name(self) -> str: ...

    def validate(self) -> list[str]: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class PartsInvalid(ValueError):
    """Validation found problems; nothing was started."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class PartFailed(RuntimeError):
    """A part failed to start; what had started is stopped again."""

    def __init__(self, part: str, error: BaseException) -> None:
        self.part = part
        super().__init__(f"{part}: {error}" if str(error) else f"{part}: {type(error).__name__}")


class Parts:
    """Parts started in order and stopped in reverse."""

    def __init__(self, parts: Sequence[Part]) -> None:
        self.parts = list(parts)
        self._started: list[Part] = []

    def validate(self) -> None:
        problems = self.problems()
        if problems:
            raise PartsInvalid(problems)

    def problems(self) -> list[str]:
        """Every part's problems, each named by its part (a `Together`'s by its members)."""
        return [
            problem
            for part in self.parts
            for problem in (
                part.parts.problems()
                if isinstance(part, Together)
                else [f"{part.name}: {p}" for p in part.validate()]
            )
        ]

    async def start(self, *, together: bool = False) -> None:
        """Validate, then start each part (``together``: all at once, for parts that need
        nothing of each other); on failure stop the started ones and raise."""
        self.validate()
        if together:
            await self._start_together()
            return
        for part in self.parts:
            self._started.append(part)  # a half-started part gets its stop too
            try:
                began = time.monotonic()
                await part.start()
                logger.debug("%s started in %.3f s", part.name, time.monotonic() - began)
            except PartFailed:  # a member of a `Together`, named already
                await self.stop()
                raise
            except Exception as err:
                await self.stop()
                raise PartFailed(part.name, err) from err
            except BaseException:
                await self.stop()
                raise

    async def _start_together(self) -> None:
        self._started = list(self.parts)
        results = await asyncio.gather(*(p.start() for p in self.parts), return_exceptions=True)
        for part, result in zip(self.parts, results, strict=True):
            if isinstance(result, BaseException):
                await self.stop()
                if isinstance(result, Exception):
                    raise PartFailed(part.name, result) from result
                raise result

    async def stop(self) -> None:
        """Stop what started, last first; a part whose stop fails does not keep others up."""
        started, self._started = self._started, []
        for part in reversed(started):
            stopping = asyncio.create_task(part.stop())
            try:
                # A stop that takes long is named while it runs (draining tasks may take
                # their stop timeout): what `fargo down` waits for is never a mystery.
                while not (await asyncio.wait({stopping}, timeout=SLOW_STOP_SECONDS))[0]:
                    logger.warning("still stopping %s", part.name)
                stopping.result()
            except asyncio.CancelledError:
                stopping.cancel()
                raise
            except Exception:
                logger.exception("stopping %s failed", part.name)


class Together:
    """Parts that need nothing of each other, started at once (their start-ups overlap)
    and stopped in reverse order, as one part."""

    def __init__(self, name: str, parts: Sequence[Part]) -> None:
        self.name = name
        self.parts = Parts(parts)

    def validate(self) -> list[str]:
        return self.parts.problems()

    async def start(self) -> None:
        await self.parts.start(together=True)

    async def stop(self) -> None:
        await self.parts.stop()


class Step:
    """A part made of a start action (and optionally a stop): state set up at start.

    Step("Cloud Map namespace", start=create_namespace) — for work with no process or
    socket of its own, so it still runs in its place in the order."""

    def __init__(
        self,
        name: str,
        start: Callable[[], Awaitable[None] | None],
        stop: Callable[[], Awaitable[None] | None] | None = None,
    ) -> None:
        self.name = name
        self._start = start
        self._stop = stop

    def validate(self) -> list[str]:
        return []

    async def start(self) -> None:
        result = self._start()
        if inspect.isawaitable(result):
            await result

    async def stop(self) -> None:
        if self._stop is not None:
            result = self._stop()
            if inspect.isawaitable(result):
                await result
