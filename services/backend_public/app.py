"""backend-public's routes.

- ``GET /`` — health check;
- ``GET /api/public`` — ``Hello world``;
- ``GET /api/private`` — relays ``$PRIVATE_DISCOVERY_URL/endpoint`` (service
  discovery: Cloud Map's multivalue DNS name, balanced by :mod:`service_kit.downstream`);
- ``GET /api/private-with-alb`` — relays ``$PRIVATE_ALB_URL/endpoint`` (the internal ALB).

A relay answers with the callee's status and body, or with a JSON 502/504 when
the callee cannot be reached in time (see :class:`service_kit.downstream.DownstreamError`),
or 503 when its URL is not configured.
"""

from __future__ import annotations

from collections.abc import Mapping

from service_kit.asgi import Handler, Request, Response, Service
from service_kit.downstream import Callee, Downstream, DownstreamError, env_callee

DEFAULT_PORT = 8080
DISCOVERY_URL_ENV = "PRIVATE_DISCOVERY_URL"
ALB_URL_ENV = "PRIVATE_ALB_URL"
CALLEE_PATH = "/endpoint"

HEALTHY = Response.text("OK")
HELLO = Response.text("Hello world")


async def health(request: Request) -> Response:
    """``GET /``: the target group's health check."""
    return HEALTHY


async def public(request: Request) -> Response:
    """``GET /api/public``."""
    return HELLO


def relay(downstream: Downstream, callee: Callee | None, setting: str) -> Handler:
    """A handler answering with the callee's ``/endpoint``."""
    if callee is None:
        unconfigured = Response.json({"error": f"{setting} is not set"}, 503)

        async def not_configured(request: Request) -> Response:
            return unconfigured

        return not_configured

    async def relayed(request: Request) -> Response:
        try:
            answer = await downstream.get(callee, CALLEE_PATH, trace_id=request.trace_id)
        except DownstreamError as exc:
            return exc.response()
        return Response(answer.status, answer.body, answer.content_type)

    return relayed


def build_app(environ: Mapping[str, str]) -> Service:
    """The ASGI app, configured from ``environ`` (raises ``SettingError``)."""
    downstream = Downstream.from_env(environ)
    return Service(
        {
            "/": health,
            "/api/public": public,
            "/api/private": relay(
                downstream, env_callee(environ, DISCOVERY_URL_ENV), DISCOVERY_URL_ENV
            ),
            "/api/private-with-alb": relay(
                downstream, env_callee(environ, ALB_URL_ENV), ALB_URL_ENV
            ),
        },
        on_startup=[downstream.start],
        on_shutdown=[downstream.stop],
    )
