"""The control plane's API, on a unix socket in the state folder (owner only).

``GET /status`` the whole twin (a `fargo.local.status.TwinStatus`, what ``fargo status``
prints), ``GET /ready`` readiness (`fargo.local.status.Readiness`; ``?wait=S``: answered
once ready or failing, or after S seconds, at most `MAX_READY_WAIT_SECONDS`; a failure
once the control plane stops), ``GET /metrics``
the last few minutes of every metric (`fargo.local.status.MetricsStatus`), ``POST
/deployments/{service}`` a rolling deployment onto an image built from the current
sources, ``POST /services/{service}/restart`` one onto the image it runs, ``POST
/services/{service}/scale?count=N`` a new desired count, ``POST /spec`` re-read the spec
file and apply it as a diff (`fargo.local.reapply`), ``POST /down`` stop everything.
``GET /traces?service=S&slow_ms=100&limit=20`` the X-Ray traces kept (most recent first),
``GET /traces/{trace_id}`` one trace's spans, ``GET /service-map`` the service map's
nodes and edges (`fargo.local.xray.service_graph`).
`fargo.local.control.client.ControlClient` is the CLI's side.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import BaseModel

from fargo.local.evidence import NeedsVpcMode, dns_evidence, image_pull_evidence
from fargo.local.reapply import SpecRefused
from fargo.local.status import Readiness
from fargo.spec import SpecError, check_spec

if TYPE_CHECKING:
    from fargo.local.runtime import Runtime


# How long `stop` waits for open connections: a client that connected as the socket
# closed is otherwise waited for until its own timeout (aiohttp waits up to 60 s).
SHUTDOWN_TIMEOUT_SECONDS = 1.0
# The longest `GET /ready?wait=` holds its answer: a waiting `fargo up --detach` asks
# again then (and notices meanwhile if the control plane died).
MAX_READY_WAIT_SECONDS = 5.0
STOPPING = "the control plane is stopping"


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
        app.router.add_get("/metrics", self._metrics)
        app.router.add_post("/deployments/{service}", self._deploy)
        app.router.add_post("/services/{service}/restart", self._restart)
        app.router.add_post("/services/{service}/scale", self._scale)
        app.router.add_post("/spec", self._apply_spec)
        app.router.add_post("/down", self._down)
        app.router.add_get("/evidence/image-pulls", self._image_pulls)
        app.router.add_get("/evidence/dns", self._dns)
        app.router.add_get("/traces", self._traces)
        app.router.add_get("/traces/{trace_id}", self._trace)
        app.router.add_get("/service-map", self._service_map)
        self._runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS
        )
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
        return _model_response(self._runtime.describe())

    async def _metrics(self, request: web.Request) -> web.Response:
        return _model_response(self._runtime.metrics.describe())

    async def _ready(self, request: web.Request) -> web.Response:
        wait = request.query.get("wait")
        if wait is not None:
            try:
                seconds = float(wait)
            except ValueError:
                seconds = -1.0
            if not 0 <= seconds <= MAX_READY_WAIT_SECONDS:
                raise web.HTTPBadRequest(
                    text=f"wait={wait!r}: expected seconds from 0 to {MAX_READY_WAIT_SECONDS:g}\n"
                )
            ready = asyncio.ensure_future(self._runtime.wait_ready(timeout=seconds))
            stopping = asyncio.ensure_future(self._shutdown.wait())
            await asyncio.wait({ready, stopping}, return_when=asyncio.FIRST_COMPLETED)
            for waiting in (ready, stopping):
                waiting.cancel()
        if self._shutdown.is_set():  # a waiting `fargo up` gives up instead of asking again
            return _model_response(Readiness(ready=False, failure=STOPPING))
        return _model_response(self._runtime.readiness())

    async def _deploy(self, request: web.Request) -> web.Response:
        name = request.match_info["service"]
        try:
            result = await self._runtime.update_service(name)
        except LookupError as err:
            raise web.HTTPNotFound(text=f"{err}\n") from None
        return web.json_response(result, dumps=_dumps)

    async def _restart(self, request: web.Request) -> web.Response:
        try:
            result = await self._runtime.restart_service(request.match_info["service"])
        except LookupError as err:
            raise web.HTTPNotFound(text=f"{err}\n") from None
        return web.json_response(result, dumps=_dumps)

    async def _scale(self, request: web.Request) -> web.Response:
        try:
            count = int(request.query.get("count", ""))
        except ValueError:
            raise web.HTTPBadRequest(text="?count= takes a whole number\n") from None
        try:
            result = self._runtime.scale_service(request.match_info["service"], count)
        except LookupError as err:
            raise web.HTTPNotFound(text=f"{err}\n") from None
        except ValueError as err:
            raise web.HTTPBadRequest(text=f"{err}\n") from None
        return web.json_response(result, dumps=_dumps)

    async def _apply_spec(self, request: web.Request) -> web.Response:
        """Re-read the spec file and apply it as a diff; the answer comes once every change
        is applied (rolling deployments included): ``{"spec", "warnings", "changes",
        "completed"}``. 400: the spec has errors; 409: the running twin cannot take it.
        Nothing is changed in either case."""
        runtime = self._runtime
        try:
            report = check_spec(runtime.spec_path, world="twin")
        except SpecError as err:
            raise web.HTTPBadRequest(text=f"{err}\n") from None
        try:
            applied = await runtime.apply(report.spec)
        except SpecRefused as err:
            raise web.HTTPConflict(text=f"{err}\n") from None
        return web.json_response(
            {
                "spec": str(runtime.spec_path),
                "warnings": report.warning_lines(),
                "changes": applied.applied,
                "completed": applied.completed,
            },
            dumps=_dumps,
        )

    async def _image_pulls(self, request: web.Request) -> web.Response:
        try:
            answer = await image_pull_evidence(self._runtime)
        except NeedsVpcMode as err:
            raise web.HTTPConflict(text=f"{err}\n") from None
        return web.json_response(answer, dumps=_dumps)

    async def _dns(self, request: web.Request) -> web.Response:
        name = request.query.get("name", "")
        if not name:
            raise web.HTTPBadRequest(text="?name= is required\n")
        try:
            answer = await dns_evidence(self._runtime, name)
        except LookupError as err:  # NeedsVpcMode, or no task to ask from
            raise web.HTTPConflict(text=f"{err}\n") from None
        return web.json_response(answer, dumps=_dumps)

    async def _traces(self, request: web.Request) -> web.Response:
        query = request.query
        try:
            slow_ms = float(query.get("slow_ms", "0"))
            limit = int(query.get("limit", "20"))
        except ValueError:
            raise web.HTTPBadRequest(
                text="?slow_ms= takes milliseconds and ?limit= a whole number\n"
            ) from None
        if slow_ms < 0 or limit < 1:
            raise web.HTTPBadRequest(text="?slow_ms= is at least 0 and ?limit= at least 1\n")
        service = query.get("service") or None
        if service is not None and service not in self._runtime.spec.services:
            known = ", ".join(self._runtime.spec.services)
            raise web.HTTPNotFound(text=f"no service named {service!r} (the spec has {known})\n")
        answer = self._runtime.list_traces(service=service, slow_ms=slow_ms, limit=limit)
        return web.json_response(answer, dumps=_dumps)

    async def _trace(self, request: web.Request) -> web.Response:
        try:
            answer = self._runtime.get_trace(request.match_info["trace_id"])
        except LookupError as err:
            raise web.HTTPNotFound(text=f"{err}\n") from None
        return web.json_response(answer, dumps=_dumps)

    async def _service_map(self, request: web.Request) -> web.Response:
        return web.json_response(self._runtime.get_service_map(), dumps=_dumps)

    async def _down(self, request: web.Request) -> web.Response:
        self._shutdown.set()
        return web.json_response({"stopping": True})


def _dumps(data: Any) -> str:
    return json.dumps(data, default=str)


def _model_response(model: BaseModel) -> web.Response:
    return web.Response(text=model.model_dump_json(), content_type="application/json")
