"""``python -m handler_spans``: ``GET /priced`` opens a span of its own, as a user's
handler would, with nothing but ``opentelemetry-api``, and answers with the trace header
``propagate.inject`` writes inside it."""

from collections.abc import Mapping

from opentelemetry import propagate, trace

from service_kit.asgi import Request, Response, Service
from service_kit.server import serve

tracer = trace.get_tracer(__name__)  # before serve() installs the provider, as users do


async def health(request: Request) -> Response:
    return Response.text("OK")


async def priced(request: Request) -> Response:
    with tracer.start_as_current_span("price lookup", attributes={"sku": "a-1"}) as span:
        span.add_event("cache miss")
        headers: dict[str, str] = {}
        propagate.inject(headers)
    return Response.json({"downstream_header": headers.get("X-Amzn-Trace-Id")})


def build_app(environ: Mapping[str, str]) -> Service:
    return Service({"/": health, "/priced": priced})


if __name__ == "__main__":
    serve(build_app, default_port=8080)
