"""The keep-alive connection pool under `service_kit.downstream`: aiohttp's client, and
what its errors mean.

`Downstream` imports this module in a thread of its own when the process starts
(`service_kit.downstream.preload_pool`): aiohttp takes about 0.15 s of CPU to import, half
of a task's start-up, and a task should listen first. A call made before the import
finished waits for it.
"""

from __future__ import annotations

import os

import aiohttp
from yarl import URL

from service_kit.call_failures import BadResponse, ConnectionFailed, ConnectTimeout, ReadTimeout

POOL_LIMIT = 1024
# Shorter than the callee's keep-alive (service_kit.server.KEEP_ALIVE_S, or the spec's
# keep_alive passed as HTTP_KEEP_ALIVE_TIMEOUT), so the pool drops an idle connection
# before the server does, never while it does.
POOL_KEEPALIVE_S = 30.0


class Pool:
    """One aiohttp ``ClientSession``: a pool of keep-alive connections per address."""

    def __init__(self, *, connect_timeout_s: float, read_timeout_s: float) -> None:
        connector = aiohttp.TCPConnector(
            limit=POOL_LIMIT,
            keepalive_timeout=POOL_KEEPALIVE_S,
            # We only ever connect to IP addresses: no DNS cache, and the threaded
            # resolver (never called) instead of aiodns, which runs a helper thread.
            use_dns_cache=False,
            resolver=aiohttp.ThreadedResolver(),
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=connect_timeout_s + read_timeout_s,
                sock_connect=connect_timeout_s,
                sock_read=read_timeout_s,
            ),
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            # No Accept-Encoding: the body is passed through as it comes.
            skip_auto_headers=("Accept-Encoding", "User-Agent"),
        )

    async def get(self, url: URL, headers: dict[str, str]) -> tuple[int, bytes, bytes]:
        """GET ``url``: its status, body and ``Content-Type`` (latin-1 bytes); a failure is
        a `service_kit.call_failures.CallFailed`."""
        try:
            async with self._session.get(url, headers=headers, allow_redirects=False) as resp:
                body = await resp.read()
                content_type = resp.headers.get("Content-Type", "application/octet-stream")
                return resp.status, body, content_type.encode("latin-1")
        except aiohttp.ConnectionTimeoutError as exc:
            raise ConnectTimeout(str(exc)) from exc
        except (aiohttp.ServerTimeoutError, TimeoutError) as exc:
            raise ReadTimeout(str(exc)) from exc
        except aiohttp.ClientConnectionError as exc:
            raise ConnectionFailed(_describe(exc)) from exc
        except aiohttp.ClientError as exc:
            raise BadResponse(_describe(exc)) from exc

    async def close(self) -> None:
        await self._session.close()


def _describe(exc: aiohttp.ClientError) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        errno = exc.os_error.errno
        return f"cannot connect: {os.strerror(errno) if errno else exc.os_error}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "callee closed the connection without answering"
    if isinstance(exc, aiohttp.ClientOSError):
        return f"connection failed: {exc.strerror or exc}"
    return f"bad response: {exc}"
