"""ASGI middleware: a server span per HTTP request, through the OpenTelemetry API.

For each request: the caller's ``X-Amzn-Trace-Id`` is extracted by the propagator
(`service_kit.xray_propagator`), a ``SERVER`` span is started under it by the tracer
(`service_kit.otel`: an X-Ray segment if sampled) with the request's HTTP attributes, and
made the current span while the app runs, so a handler's
``trace.get_tracer(__name__).start_as_current_span(...)`` and `service_kit.downstream`'s
calls are its subsegments. The response's status ends it.

Health checks (an ``ELB-HealthChecker`` or container health check user agent, no trace
header) are not traced, as a sampling rule excluding them would do in AWS: they would
otherwise take the reservoir every second.
"""

from __future__ import annotations

from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.propagators.textmap import Getter, TextMapPropagator
from opentelemetry.trace import SpanKind

from service_kit.asgi import TRACE_HEADER, ASGIApp, Receive, Scope, Send, StatusNotingSend
from service_kit.xray_propagator import HEADER, HEADER_LOWER

# Health checkers' user agents: ALB's, and the twin's container health check (in AWS a
# command in the container, which the task's own sampling rule would leave out).
HEALTH_CHECKERS = (b"ELB-HealthChecker", b"fargo-container-health-check")
USER_AGENT = b"user-agent"
HOST = b"host"


class TraceHeaderGetter(Getter[bytes]):
    """Reads a carrier that is the request's raw ``X-Amzn-Trace-Id`` value (b"": none), as
    the middleware found it among the headers: no mapping to build per request."""

    def get(self, carrier: bytes, key: str) -> list[str] | None:
        if carrier and key in (HEADER, HEADER_LOWER):
            return [carrier.decode("latin-1")]
        return None

    def keys(self, carrier: bytes) -> list[str]:
        return [HEADER] if carrier else []


TRACE_HEADER_GETTER = TraceHeaderGetter()


class XRayMiddleware:
    """A span per HTTP request (see the module docstring)."""

    def __init__(self, app: ASGIApp, tracer: trace.Tracer, propagator: TextMapPropagator) -> None:
        self.app = app
        self.tracer = tracer
        self.propagator = propagator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = user_agent = host = None
        for key, value in scope["headers"]:
            if key == TRACE_HEADER:
                header = value
            elif key == USER_AGENT:
                user_agent = value
            elif key == HOST:
                host = value
        if header is None and user_agent is not None and user_agent.startswith(HEALTH_CHECKERS):
            await self.app(scope, receive, send)
            return
        parent = self.propagator.extract(header or b"", getter=TRACE_HEADER_GETTER)
        method = scope["method"]
        span = self.tracer.start_span(f"{method} {scope['path']}", parent, SpanKind.SERVER)
        token = context_api.attach(trace.set_span_in_context(span, parent))
        try:
            if not span.is_recording():  # unsampled: the trace is only propagated
                await self.app(scope, receive, send)
                return
            attributes = {
                "http.request.method": method,
                "url.full": f"http://{(host or b'').decode('latin-1')}{scope['path']}",
            }
            if user_agent is not None:
                attributes["user_agent.original"] = user_agent.decode("latin-1")
            span.set_attributes(attributes)
            noting = StatusNotingSend(send)
            try:
                await self.app(scope, receive, noting)
            finally:
                span.set_attribute("http.response.status_code", noting.status)
                span.end()
        finally:
            context_api.detach(token)
