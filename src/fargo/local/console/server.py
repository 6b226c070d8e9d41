"""The console's HTTP server (see `fargo.local.console`): aiohttp on 127.0.0.1.

    console = Console(runtime, port=0)      # a part of the twin; port 0: any free port
    await console.start(); console.url      # http://127.0.0.1:40123
    console.sources["metrics"] = metrics    # async (query) -> JSON, served at /api/metrics

Only loopback, and only requests whose ``Host`` is the console's own address (a web page
cannot reach it through a DNS name rebound to 127.0.0.1). A request from a web page
(``Origin``) is served only to the spec's internet-facing load balancers' origins,
where the demo page comes from; the others get 403. ``POST /api/burst`` takes JSON
only, so a browser always asks first (a CORS preflight).

The optional sources answer what the control plane's ``GET /metrics`` (a
``MetricsStatus``: ``period_seconds`` and ``metrics``, each with ``namespace``,
``metric_name``, ``dimensions``, ``statistic``, ``unit`` and ``datapoints`` of
``timestamp`` and ``value``), ``GET /traces`` (``kept`` and ``traces``, each with
``trace_id``, ``start_time``, ``duration_ms``, ``request``, ``status``, ``services``),
``GET /traces/{id}`` (the summary and its ``spans``: ``id``, ``parent_id``, ``name``,
``kind``, ``start_time``, ``end_time``, ``duration_ms``, ``own_ms``, ``status``,
``inferred``, ``target``) and ``GET /service-map`` (``nodes`` and ``edges`` with
``requests``, ``errors``, ``faults``, rates and ``latency_ms`` p50/p95/p99) answer; the
page draws those shapes. The runtime wires them, e.g.::

    console.sources["metrics"] = lambda query: self.metrics.describe().model_dump(mode="json")
    console.sources["traces"] = lambda query: self.list_traces(limit=20)
    console.sources["trace"] = lambda query: self.get_trace(query["trace_id"])
    console.sources["service-map"] = lambda query: self.get_service_map()
"""

from __future__ import annotations

import asyncio
import inspect
import json
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from aiohttp import web

from fargo.demo.report import as_json
from fargo.demo.requests import public_listener
from fargo.local.console.architecture import architecture
from fargo.local.console.burst import BurstRefused, BurstRequest, send_burst
from fargo.local.console.explain import explain
from fargo.local.ec2.sockets import bind_problem
from fargo.local.events import Event, event_files, parse_events
from fargo.local.status import Endpoints, TwinStatus
from fargo.spec import Spec

HOST = "127.0.0.1"
POINTS_TTL_SECONDS = 5.0
POINTS_CALLS = 10
EVENTS_DEFAULT = 100
EVENTS_MAX = 1000
EVENTS_TAIL_BYTES = 512 * 1024
SCALING_PREFIX = "Application Auto Scaling:"
# What each optional source is, for the 404 that says it is not there.
SOURCES = {
    "metrics": "metrics (CPU, memory, requests per target group) are",
    "traces": "traces are",
    "service-map": "the service map is",
}
# A trace's spans (``/api/traces/{trace_id}``): the query gets ``trace_id``; the source
# raises LookupError for a trace it does not have.
TRACE_SOURCE = "trace"

# An optional part of the console: the query parameters → a JSON-ready answer (or an
# awaitable of one).
Source = Callable[[Mapping[str, str]], Any]


class ConsoleTwin(Protocol):
    """What the console reads of the running twin (`fargo.local.runtime.Runtime`)."""

    spec: Spec
    state_dir: Path

    def describe(self) -> TwinStatus: ...

    def endpoints(self) -> Endpoints: ...


PointsRunner = Callable[[Spec, TwinStatus], Awaitable[list[Any]]]


def allowed_origins(spec: Spec, endpoints: Endpoints) -> set[str]:
    """The origins of the internet-facing load balancers' listeners (the demo page's), each
    also under ``localhost`` when it is served on 127.0.0.1."""
    origins = set()
    for name, lb in spec.load_balancers.items():
        if lb.scheme != "internet-facing":
            continue
        for url in endpoints.load_balancers.get(name, []):
            parts = urlsplit(url)
            default = {"http": 80, "https": 443}.get(parts.scheme)
            port = "" if parts.port in (None, default) else f":{parts.port}"
            hosts = {parts.hostname or ""}
            if parts.hostname == "127.0.0.1":
                hosts.add("localhost")
            origins |= {f"{parts.scheme}://{host}{port}" for host in hosts}
    return origins


class Console:
    """The read-only console of one twin; a part of `fargo.local.runtime.Runtime`."""

    name = "console (the demo page's API)"

    def __init__(
        self,
        twin: ConsoleTwin,
        *,
        port: int = 0,
        host: str = HOST,
        run_points: PointsRunner | None = None,
    ) -> None:
        self._twin = twin
        self._host = host
        self._port = port
        self.port = port
        self._runner: web.AppRunner | None = None
        self._run_points = run_points or _demo_points(twin)
        self._points: tuple[float, dict[str, Any]] | None = None
        self._points_lock = asyncio.Lock()
        self._burst_lock = asyncio.Lock()
        self.sources: dict[str, Source] = {}

    @property
    def url(self) -> str | None:
        """``http://127.0.0.1:PORT`` once started; None before."""
        return f"http://{self._host}:{self.port}" if self._runner is not None else None

    def validate(self) -> list[str]:
        problem = bind_problem(self._host, self._port, "the console")
        return [problem] if problem else []

    async def start(self) -> None:
        app = web.Application(middlewares=[self._guard])
        app.router.add_get("/api", self._index)
        app.router.add_get("/api/architecture", self._architecture)
        app.router.add_get("/api/status", self._status)
        app.router.add_get("/api/points", self._points_answer)
        app.router.add_get("/api/events", self._events)
        app.router.add_get("/api/explain", self._explain)
        for name in SOURCES:
            app.router.add_get(f"/api/{name}", self._source(name))
        app.router.add_get("/api/traces/{trace_id}", self._trace)
        app.router.add_post("/api/burst", self._burst)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._host, self._port))
            site = web.SockSite(self._runner, sock)
            await site.start()
        except OSError as err:
            sock.close()
            await self.stop()
            raise OSError(
                err.errno, f"console: cannot listen on {self._host}:{self._port}"
            ) from err
        self.port = sock.getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    # -- guard: Host, Origin, preflight ------------------------------------------------------

    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        hosts = {f"{self._host}:{self.port}", f"localhost:{self.port}"}
        if request.host not in hosts:
            return _error(403, f"the console answers at {self._host}:{self.port} only")
        origin = request.headers.get("Origin")
        if origin is not None and origin not in self._origins():
            allowed = ", ".join(sorted(self._origins())) or "none: no internet-facing listener"
            return _error(
                403, f"origin {origin} may not call the console; only the demo page's ({allowed})"
            )
        if request.method == "OPTIONS":
            response: web.StreamResponse = web.Response(status=204)
            response.headers["Access-Control-Allow-Methods"] = "GET, POST"
            response.headers["Access-Control-Allow-Headers"] = "Content-Type"
            response.headers["Access-Control-Max-Age"] = "600"
            if request.headers.get("Access-Control-Request-Private-Network") == "true":
                response.headers["Access-Control-Allow-Private-Network"] = "true"
        else:
            try:
                response = await handler(request)
            except web.HTTPException as err:
                response = _error(err.status, err.text or err.reason)
        if origin is not None:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
        response.headers["Cache-Control"] = "no-store"
        return response

    def _origins(self) -> set[str]:
        return allowed_origins(self._twin.spec, self._twin.endpoints())

    # -- the answers ----------------------------------------------------------------------------

    async def _index(self, request: web.Request) -> web.Response:
        """What the console serves, and which optional sources this twin has (the page asks
        only for those: a 404 would be an error in the browser's console)."""
        return _json(
            {
                "console": self.url,
                "sources": {
                    name: {"available": name in self.sources, "path": f"/api/{name}"}
                    | ({} if name in self.sources else {"message": _missing(name)})
                    for name in SOURCES
                },
            }
        )

    async def _architecture(self, request: web.Request) -> web.Response:
        return _json(architecture(self._twin.spec, self._twin.describe()))

    async def _status(self, request: web.Request) -> web.Response:
        return web.Response(
            text=self._twin.describe().model_dump_json(), content_type="application/json"
        )

    async def _points_answer(self, request: web.Request) -> web.Response:
        return _json(await self.points())

    async def points(self) -> dict[str, Any]:
        """The seven points, run now or at most `POINTS_TTL_SECONDS` ago (one run at a time;
        callers during a run get its result)."""
        async with self._points_lock:
            now = time.monotonic()
            if self._points is None or now - self._points[0] > POINTS_TTL_SECONDS:
                spec, status = self._twin.spec, self._twin.describe()
                points = await self._run_points(spec, status)
                answered = as_json(points)
                self._points = (
                    time.monotonic(),
                    {
                        "points": answered,
                        "passed": sum(p["status"] == "pass" for p in answered),
                        "failed": sum(p["status"] == "fail" for p in answered),
                        "skipped": sum(p["status"] == "skipped" for p in answered),
                        "checked_at": time.time(),
                    },
                )
            checked, answer = self._points
        return {**answer, "age_seconds": round(time.monotonic() - checked, 3)}

    async def _events(self, request: web.Request) -> web.Response:
        try:
            limit = int(request.query.get("limit", EVENTS_DEFAULT))
        except ValueError:
            return _error(400, "?limit= takes a whole number")
        if not 1 <= limit <= EVENTS_MAX:
            return _error(400, f"?limit= is 1 to {EVENTS_MAX}")
        events = recent_events(self._twin.state_dir, limit)
        return _json({"events": events, "scaling": [e for e in events if e["scaling"]]})

    async def _explain(self, request: web.Request) -> web.Response:
        route = request.query.get("route", "")
        if not route.startswith("/"):
            return _error(400, "?route= takes a path, such as /api/private")
        reason = explain(self._twin.spec, self._twin.describe(), route)
        return _json({"route": route, "explanation": reason})

    def _source(self, name: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def serve(request: web.Request) -> web.Response:
            source = self.sources.get(name)
            if source is None:
                return _error(404, _missing(name), available=False)
            try:
                return _json(await _answer(source, request.query))
            except LookupError as err:  # e.g. ?service= names no service
                return _error(404, _message(err))
            except ValueError as err:  # e.g. ?limit=x
                return _error(400, f"{request.path_qs}: {err}")

        return serve

    async def _trace(self, request: web.Request) -> web.Response:
        source = self.sources.get(TRACE_SOURCE)
        if source is None:
            return _error(404, _missing("traces"), available=False)
        trace_id = request.match_info["trace_id"]
        try:
            return _json(await _answer(source, {**request.query, "trace_id": trace_id}))
        except LookupError as err:
            return _error(404, _message(err))

    async def _burst(self, request: web.Request) -> web.Response:
        if request.content_type != "application/json":
            return _error(415, 'send JSON: {"route": "/api/public", "count": 20}')
        try:
            body = await request.json()
        except ValueError:
            return _error(400, 'the body is not JSON: {"route": "/api/public", "count": 20}')
        try:
            burst = BurstRequest.parse(body)
        except BurstRefused as err:
            return _error(400, str(err))
        spec, status = self._twin.spec, self._twin.describe()
        public = public_listener(spec, status.endpoints.load_balancers)
        if public is None:
            return _error(409, "the spec has no load balancer with an HTTPS listener")
        context = ssl.create_default_context(cafile=status.endpoints.ca_certificate)
        async with self._burst_lock:  # one burst at a time: the latencies are the route's
            result = await send_burst(public, context, burst)
        if result["failed"]:
            result["explanation"] = explain(spec, self._twin.describe(), burst.route)
        return _json(result)


def recent_events(state_dir: Path, limit: int) -> list[dict[str, Any]]:
    """The last ``limit`` events, oldest first; scaling activities have ``scaling`` true."""
    lines: list[str] = []
    for path in event_files(state_dir):
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - EVENTS_TAIL_BYTES))
            text = handle.read().decode("utf-8", errors="replace")
        found = text.splitlines()
        if size > EVENTS_TAIL_BYTES and found:
            found = found[1:]  # the first line may be cut
        lines += found
    events: list[Event] = list(parse_events(iter(lines)))[-limit:]
    return [
        {**event.__dict__, "scaling": event.message.startswith(SCALING_PREFIX)} for event in events
    ]


def _demo_points(twin: ConsoleTwin) -> PointsRunner:
    async def run(spec: Spec, status: TwinStatus) -> list[Any]:
        # Imported here: the demo's twin world imports the control plane's client.
        from fargo.local.control.client import ControlClient
        from fargo.local.demo.twin import run_demo
        from fargo.local.state import folder

        control = ControlClient(folder.control_socket(twin.state_dir))
        return await run_demo(spec, status, calls=POINTS_CALLS, control=control)

    return run


async def _answer(source: Source, query: Mapping[str, str]) -> Any:
    answer = source(query)
    return await answer if inspect.isawaitable(answer) else answer


def _message(err: Exception) -> str:
    """The error's own words (a KeyError's str() adds quotes)."""
    return str(err.args[0]) if err.args else type(err).__name__


def _missing(name: str) -> str:
    return f"{SOURCES[name]} not available in this twin yet"


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(data, default=str), status=status, content_type="application/json"
    )


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return _json({"error": message, **extra}, status=status)
