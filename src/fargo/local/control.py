"""The control plane's API, on a unix socket in the state folder (owner only).

``GET /status`` the whole twin (what ``fargo status`` prints), ``GET /ready``
readiness, ``POST /deployments/{service}`` a rolling deployment, ``POST /down``
stop everything. `ControlClient` is the CLI's side.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

if TYPE_CHECKING:
    from fargo.local.runtime import Runtime


class ControlPlaneUnavailable(RuntimeError):
    """No control plane answers on this state folder's socket."""


class ControlServer:
    def __init__(self, runtime: Runtime, socket_path: Path, shutdown: asyncio.Event) -> None:
        self._runtime = runtime
        self._path = socket_path
        self._shutdown = shutdown
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/status", self._status)
        app.router.add_get("/ready", self._ready)
        app.router.add_post("/deployments/{service}", self._deploy)
        app.router.add_post("/down", self._down)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self._path.unlink(missing_ok=True)
        old_umask = os.umask(0o177)
        try:
            await web.UnixSite(self._runner, str(self._path)).start()
        finally:
            os.umask(old_umask)

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        self._path.unlink(missing_ok=True)

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response(self._runtime.describe(), dumps=_dumps)

    async def _ready(self, request: web.Request) -> web.Response:
        return web.json_response(self._runtime.readiness())

    async def _deploy(self, request: web.Request) -> web.Response:
        name = request.match_info["service"]
        try:
            result = await self._runtime.update_service(name)
        except LookupError as err:
            raise web.HTTPNotFound(text=f"{err}\n") from None
        return web.json_response(result, dumps=_dumps)

    async def _down(self, request: web.Request) -> web.Response:
        self._shutdown.set()
        return web.json_response({"stopping": True})


def _dumps(data: Any) -> str:
    import json

    return json.dumps(data, default=str)


class ControlClient:
    """Talks to a running control plane; raises `ControlPlaneUnavailable` if none answers."""

    def __init__(self, socket_path: Path, timeout: float = 10.0) -> None:
        self._path = socket_path
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def get(self, path: str) -> Any:
        return await self._call("GET", path)

    async def post(self, path: str, timeout: float | None = None) -> Any:
        return await self._call("POST", path, timeout)

    async def _call(self, method: str, path: str, timeout: float | None = None) -> Any:
        if not self._path.exists():
            raise ControlPlaneUnavailable(f"no control plane socket at {self._path}")
        connector = aiohttp.UnixConnector(path=str(self._path))
        limit = aiohttp.ClientTimeout(total=timeout) if timeout else self._timeout
        try:
            async with (
                aiohttp.ClientSession(connector=connector, timeout=limit) as session,
                session.request(method, f"http://fargo{path}") as response,
            ):
                if response.status >= 400:
                    raise ControlPlaneUnavailable(
                        f"{path}: {response.status} {await response.text()}"
                    )
                return await response.json()
        except (aiohttp.ClientConnectionError, FileNotFoundError, ConnectionRefusedError) as err:
            raise ControlPlaneUnavailable(
                f"the control plane does not answer at {self._path}: {err}"
            ) from err
