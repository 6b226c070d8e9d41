"""A client of Caddy's admin API on a unix socket (JSON in, JSON out).

    admin = CaddyAdmin(state_dir / "caddy" / "admin.sock")
    admin.open()
    await admin.request("POST", "/load", json.dumps(config).encode())
    await admin.request("GET", "/reverse_proxy/upstreams")  # [{"address": ...}, ...]
    await admin.close()

Every failure is a `CaddyError` naming the request and Caddy's own reason.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import aiohttp

from fargo.local.caddy.binary import CaddyError

ADMIN_TIMEOUT_SECONDS = 30.0
# sun_path holds 108 bytes on Linux (104 on macOS), including the terminating NUL.
UNIX_SOCKET_PATH_MAX = 103


def socket_path_fits(path: Path) -> bool:
    """Whether a unix socket can be bound at ``path`` (its length is limited)."""
    return len(os.fsencode(path)) <= UNIX_SOCKET_PATH_MAX


class CaddyAdmin:
    """Requests to the admin API; each on a fresh connection (Caddy may restart)."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket
        self._session: aiohttp.ClientSession | None = None

    def open(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=str(self.socket), force_close=True),
                timeout=aiohttp.ClientTimeout(total=ADMIN_TIMEOUT_SECONDS),
            )

    async def close(self) -> None:
        """Close the client; idempotent."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def request(self, method: str, path: str, body: bytes | None = None) -> Any:
        """The decoded JSON answer (None when empty); `CaddyError` on any failure."""
        if self._session is None:
            raise CaddyError("caddy is not running")
        headers = {"Content-Type": "application/json"} if body is not None else {}
        try:
            # The host name is only a label: the unix connector decides where requests go.
            async with self._session.request(
                method, f"http://caddy{path}", data=body, headers=headers
            ) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, OSError) as err:
            raise CaddyError(f"caddy admin API unreachable ({method} {path}): {err}") from err
        if status >= 400:
            raise CaddyError(f"caddy {method} {path}: {status} {_error_text(text)}")
        return json.loads(text) if text.strip() else None


def _error_text(text: str) -> str:
    with contextlib.suppress(ValueError, AttributeError):
        return str(json.loads(text)["error"])
    return text.strip()
