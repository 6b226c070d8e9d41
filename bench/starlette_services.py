"""The three demo services on Starlette: side B of the service-kit A/B (issue 7).

Same routes, answers and behaviour as ``services/*/app.py`` (side A, the raw-ASGI
``service_kit.asgi``), with Starlette doing the routing, requests, responses,
404/405 and lifespan. Everything that is not web-framework work is shared with
side A, so the A/B measures the framework alone: the pooled client
(``service_kit.downstream``), the task-metadata reader, the JSON access log,
settings and the server start (``service_kit.server``: uvloop, GC tuning,
graceful SIGTERM).

Run a service as ``bench/services_bench.py`` does (``services/`` and ``bench/`` on
``PYTHONPATH``)::

    PYTHONPATH=bench:services python -m starlette_services backend_public [httptools|batching]

``httptools`` (the default) is uvicorn's own protocol, no private subclass;
``batching`` is ``service_kit.protocol``'s one-write-per-response subclass.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from backend_private.app import METADATA_ENV, MetadataUnavailable, TaskMetadata
from backend_public.app import ALB_URL_ENV, CALLEE_PATH, DISCOVERY_URL_ENV
from frontend.app import FILES, SECURITY_HEADERS, STATIC_DIR
from service_kit.downstream import Callee, Downstream, DownstreamError, env_callee
from service_kit.protocol import BatchingHttpToolsProtocol
from service_kit.server import HttpProtocol, serve

Endpoint = Callable[[Request], Awaitable[Response]]

TRACE_HEADER = "x-amzn-trace-id"
HEALTHY = PlainTextResponse("OK")
HELLO = PlainTextResponse("Hello world")
NOT_FOUND = JSONResponse({"error": "not found"}, 404)
METHOD_NOT_ALLOWED = JSONResponse({"error": "method not allowed"}, 405, {"Allow": "GET, HEAD"})


async def not_found(request: Request, exc: Exception) -> Response:
    """The kit's JSON 404 instead of Starlette's ``Not Found`` text."""
    return NOT_FOUND


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    """The kit's JSON 405 (``Allow: GET, HEAD``) instead of Starlette's text."""
    return METHOD_NOT_ALLOWED


def service(routes: Mapping[str, Endpoint], downstream: Downstream | None = None) -> Starlette:
    """A Starlette app serving ``routes`` for GET and HEAD; ``downstream`` lives
    from start-up to shutdown."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if downstream is None:
            yield
            return
        await downstream.start()
        try:
            yield
        finally:
            await downstream.stop()

    app = Starlette(
        routes=[Route(path, endpoint, methods=["GET"]) for path, endpoint in routes.items()],
        exception_handlers={404: not_found, 405: method_not_allowed},
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False  # the kit answers /api/public/ with 404, not 307
    return app


def error_response(exc: DownstreamError) -> Response:
    """``{"error": ..., "callee": ...}`` with the error's 502/504 status."""
    payload = {"error": exc.reason, "callee": exc.callee}
    if exc.address is not None:
        payload["address"] = exc.address
    return JSONResponse(payload, exc.status)


async def health(request: Request) -> Response:
    """``GET /``: the target group's health check."""
    return HEALTHY


async def public(request: Request) -> Response:
    """``GET /api/public``."""
    return HELLO


def relay(downstream: Downstream, callee: Callee | None, setting: str) -> Endpoint:
    """An endpoint answering with the callee's ``/endpoint``."""
    if callee is None:
        unconfigured = JSONResponse({"error": f"{setting} is not set"}, 503)

        async def not_configured(request: Request) -> Response:
            return unconfigured

        return not_configured

    async def relayed(request: Request) -> Response:
        try:
            answer = await downstream.get(
                callee, CALLEE_PATH, trace_id=request.headers.get(TRACE_HEADER)
            )
        except DownstreamError as exc:
            return error_response(exc)
        return Response(
            answer.body, answer.status, media_type=answer.content_type.decode("latin-1")
        )

    return relayed


def backend_public(environ: Mapping[str, str]) -> Starlette:
    """backend-public (see ``backend_public.app``)."""
    downstream = Downstream.from_env(environ)
    discovery = env_callee(environ, DISCOVERY_URL_ENV)
    alb = env_callee(environ, ALB_URL_ENV)
    return service(
        {
            "/": health,
            "/api/public": public,
            "/api/private": relay(downstream, discovery, DISCOVERY_URL_ENV),
            "/api/private-with-alb": relay(downstream, alb, ALB_URL_ENV),
        },
        downstream,
    )


def backend_private(environ: Mapping[str, str]) -> Starlette:
    """backend-private (see ``backend_private.app``)."""
    downstream = Downstream.from_env(environ)
    metadata = TaskMetadata(downstream, env_callee(environ, METADATA_ENV))
    answer: Response | None = None

    async def endpoint(request: Request) -> Response:
        nonlocal answer
        if answer is None:
            try:
                answer = PlainTextResponse(f"TaskId: {await metadata.task_id()}")
            except MetadataUnavailable as exc:
                return JSONResponse({"error": str(exc)}, 503)
        return answer

    return service({"/": health, "/endpoint": endpoint}, downstream)


def frontend(environ: Mapping[str, str]) -> Starlette:
    """frontend (see ``frontend.app``)."""
    headers = {name.decode(): value.decode() for name, value in SECURITY_HEADERS}

    def static_file(name: str, media_type: bytes) -> Endpoint:
        response = Response((STATIC_DIR / name).read_bytes(), 200, headers, media_type.decode())

        async def serve_file(request: Request) -> Response:
            return response

        return serve_file

    routes = {path: static_file(name, media_type) for path, (name, media_type) in FILES.items()}
    routes["/health"] = health
    return service(routes)


SERVICES = {
    "frontend": (frontend, 80),
    "backend_public": (backend_public, 8080),
    "backend_private": (backend_private, 8090),
}
PROTOCOLS: dict[str, HttpProtocol] = {
    "httptools": "httptools",
    "batching": BatchingHttpToolsProtocol,
}


def main(argv: list[str]) -> None:
    """``python -m starlette_services <service> [httptools|batching]``."""
    name, protocol = [*argv, "httptools"][:2] if argv else ("", "")
    if len(argv) > 2 or name not in SERVICES or protocol not in PROTOCOLS:
        sys.exit(
            f"usage: python -m starlette_services {{{','.join(SERVICES)}}} [{'|'.join(PROTOCOLS)}]"
        )
    build_app, port = SERVICES[name]
    serve(build_app, default_port=port, http=PROTOCOLS[protocol])


if __name__ == "__main__":
    main(sys.argv[1:])
