"""CPU per traced request: the services' OpenTelemetry path against the OpenTelemetry SDK.

What one traced ``/api/private`` request costs its service in tracing alone, timed in a
loop (no HTTP): read the incoming ``X-Amzn-Trace-Id``, open the request's segment (span),
a subsegment (client span) for the downstream call with the header for the callee, close
both and hand the segment over for sending.

- ``service_kit.otel``, the services' own path: the real `XRayMiddleware` around an ASGI
  app that makes the downstream call's client span as `service_kit.downstream` does
  (`start_call_span`, `end_call_span`), all through the OpenTelemetry API
  (``propagator.extract``, ``tracer.start_span``, ``context.attach``,
  ``propagate.inject``, ``span.set_attribute``, ``span.end``) implemented by
  `service_kit.otel` and `service_kit.xray_propagator`; the segment is sent by one UDP
  ``sendto`` to a loopback socket (and the receiving side's ``recv`` is counted too);
  also an unsampled request (``Sampled=0``: parsed and propagated, nothing sent), and a
  span a handler opens with ``tracer.start_as_current_span``;
- OpenTelemetry SDK: the SDK's ``TracerProvider`` with the AWS X-Ray id generator and
  propagator (``opentelemetry-sdk-extension-aws``, ``opentelemetry-propagator-aws-xray``),
  a ``BatchSpanProcessor`` with an exporter that drops the spans (so the figure leaves
  out encoding and sending, which the collector path adds on top).

    python bench/tracing_overhead_bench.py [--requests 20000] [--baseline cb228cf]

Each figure is the best of 3 runs of ``--requests`` requests. ``--baseline REV`` also
runs the services' earlier hand-written X-Ray path (git revision ``REV``, before they
traced through the OpenTelemetry API) in the same harness, in a child process.

The SDK is optional: without it only the first figures are printed. It is not a
dependency of the services; install it in a scratch venv to compare.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "services"))

from opentelemetry import propagate

from service_kit.asgi import Message, Receive, Scope, Send
from service_kit.downstream import end_call_span, start_call_span
from service_kit.otel import XRayTracerProvider
from service_kit.xray import Emitter, Sampler
from service_kit.xray_middleware import XRayMiddleware
from service_kit.xray_propagator import XRayPropagator

INCOMING = "Self=1-67891234-12456789abcdef012345678;Root=1-5759e988-bd862e3fe1be46a994272793"
CALLEE = "private.backend.microservice.local"
CALLEE_URL = "http://private.backend.microservice.local:8090/endpoint"
ROUNDS = 3
START = {"type": "http.response.start", "status": 200, "headers": []}
BODY = {"type": "http.response.body", "body": b"Hello"}


def _scope(header: str) -> Scope:
    return {
        "type": "http",
        "method": "GET",
        "path": "/api/private",
        "headers": [
            (b"host", b"backend-public.local"),
            (b"user-agent", b"bench/1"),
            (b"x-amzn-trace-id", header.encode()),
        ],
    }


async def _receive() -> Message:
    return {"type": "http.request"}


async def _send(message: Message) -> None:
    pass


def service_kit_request(
    address: tuple[str, int],
    *,
    incoming: str = INCOMING,
    handler_span: bool = False,
    call: bool = True,
    traced: bool = True,
) -> Callable[[], None]:
    """One request through the middleware, a downstream call's span inside (the coroutine
    never waits, so it runs to its end in one ``send``)."""
    provider = XRayTracerProvider("backend-public", Sampler(rate=1.0), Emitter(address))
    tracer = provider.get_tracer("bench")
    propagator = XRayPropagator()
    propagate.set_global_textmap(propagator)  # what service_kit.server installs

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers: dict[str, str] = {"Host": CALLEE}
        if handler_span:
            with tracer.start_as_current_span("handler") as span:
                span.set_attribute("sku", "a-1")
        if call:
            span = start_call_span(tracer, CALLEE, CALLEE_URL, headers)
            end_call_span(span, 200)
        await send(START)
        await send(BODY)

    middleware: Any = XRayMiddleware(app, tracer, propagator) if traced else app
    scope = _scope(incoming)

    def one() -> None:
        with contextlib.suppress(StopIteration):
            middleware(scope, _receive, _send).send(None)

    return one


def otel_request() -> Callable[[], None] | None:
    try:
        from opentelemetry.propagators.aws import AwsXRayPropagator
        from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )
        from opentelemetry.trace import SpanKind, set_span_in_context
    except ImportError:
        return None

    class Dropping(SpanExporter):  # type: ignore[misc]
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider(id_generator=AwsXRayIdGenerator())
    provider.add_span_processor(BatchSpanProcessor(Dropping()))
    tracer = provider.get_tracer("backend-public")
    propagator = AwsXRayPropagator()
    carrier = {"X-Amzn-Trace-Id": INCOMING.split(";", 1)[1] + ";Sampled=1"}

    def one() -> None:
        context = propagator.extract(carrier)
        with tracer.start_as_current_span(
            "GET /api/private", context=context, kind=SpanKind.SERVER
        ) as span:
            span.set_attribute("http.request.method", "GET")
            with tracer.start_as_current_span("GET", kind=SpanKind.CLIENT) as client:
                outgoing: dict[str, str] = {}
                propagator.inject(outgoing, context=set_span_in_context(client))
                client.set_attribute("http.response.status_code", 200)
            span.set_attribute("http.response.status_code", 200)

    return one


def per_request_us(one: Callable[[], None], requests: int, rounds: int = ROUNDS) -> float:
    """CPU µs per call, the best of ``rounds`` runs (the machine is shared: the other
    runs carry other processes' cache and scheduling noise)."""
    for _ in range(1000):
        one()
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(requests):
            one()
        best = min(best, time.process_time() - started)
    return best / requests * 1e6


# The services' hand-written X-Ray path before they traced through the OpenTelemetry API
# (its segment per request and subsegment per call), run in the same harness: what
# ``--baseline REV`` measures, in a child process, from the files at git revision REV.
BASELINE = """
import contextlib, socket, sys, time
sys.path.insert(0, sys.argv[1])
from service_kit.xray import XRayMiddleware, Recorder, Sampler, Emitter, current_segment
INCOMING, CALLEE, CALLEE_URL, REQUESTS, ROUNDS = sys.argv[2:7]
START = {"type": "http.response.start", "status": 200, "headers": []}
BODY = {"type": "http.response.body", "body": b"Hello"}
async def receive(): return {"type": "http.request"}
async def send(message): pass
def request(address, incoming, call=True):
    recorder = Recorder("backend-public", Sampler(rate=1.0), Emitter(address))
    async def app(scope, receive, send):
        headers = {"Host": CALLEE}
        if call:
            sub, headers["X-Amzn-Trace-Id"] = current_segment.get().call(CALLEE, CALLEE_URL)
            if sub is not None:
                sub.close(200)
        await send(START)
        await send(BODY)
    middleware = XRayMiddleware(app, recorder)
    scope = {"type": "http", "method": "GET", "path": "/api/private", "headers": [
        (b"host", b"backend-public.local"), (b"user-agent", b"bench/1"),
        (b"x-amzn-trace-id", incoming.encode())]}
    def one():
        with contextlib.suppress(StopIteration):
            middleware(scope, receive, send).send(None)
    return one
def per_request_us(one):
    for _ in range(1000): one()
    best = float("inf")
    for _ in range(int(ROUNDS)):
        started = time.process_time()
        for _ in range(int(REQUESTS)): one()
        best = min(best, time.process_time() - started)
    return best / int(REQUESTS) * 1e6
receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
receiver.bind(("127.0.0.1", 0))
receiver.setblocking(False)
sampled = request(receiver.getsockname(), INCOMING)
def drained():
    sampled()
    with contextlib.suppress(BlockingIOError): receiver.recv(65536)
address, unsampled = receiver.getsockname(), INCOMING + ";Sampled=0"
print(per_request_us(drained), per_request_us(request(address, unsampled)),
      per_request_us(request(address, unsampled, call=False)))
"""


def baseline_us(revision: str, requests: int) -> list[float]:
    """The hand-written path at git ``revision``: µs per sampled request, unsampled one,
    unsampled one without a downstream call."""
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as folder:
        kit = Path(folder) / "service_kit"
        kit.mkdir()
        for name in ("__init__", "asgi", "settings", "xray"):
            source = subprocess.run(
                ["git", "-C", str(root), "show", f"{revision}:services/service_kit/{name}.py"],
                check=True,
                capture_output=True,
            ).stdout
            (kit / f"{name}.py").write_bytes(source)
        argv = [folder, INCOMING, CALLEE, CALLEE_URL, str(requests), str(ROUNDS)]
        out = subprocess.run(
            [sys.executable, "-c", BASELINE, *argv], check=True, capture_output=True, text=True
        ).stdout.split()
    return [float(figure) for figure in out]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also measure the hand-written X-Ray path of git revision REV (e.g. cb228cf)",
    )
    args = parser.parse_args(argv)
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.setblocking(False)
    address = receiver.getsockname()

    def drained(one: Callable[[], None]) -> Callable[[], None]:
        def both() -> None:
            one()
            with contextlib.suppress(BlockingIOError):
                receiver.recv(65536)

        return both

    figures = [
        (
            "the harness alone: the app, no tracing, no call",
            service_kit_request(address, call=False, traced=False),
        ),
        (
            "service_kit.otel, sampled (incl. sendto + the daemon's recv)",
            drained(service_kit_request(address)),
        ),
        (
            "service_kit.otel, sampled, plus a handler's span",
            drained(service_kit_request(address, handler_span=True)),
        ),
        (
            "service_kit.otel, an unsampled request",
            service_kit_request(address, incoming=INCOMING + ";Sampled=0"),
        ),
        (
            "service_kit.otel, unsampled, no downstream call",
            service_kit_request(address, incoming=INCOMING + ";Sampled=0", call=False),
        ),
    ]
    for label, one in figures:
        print(f"{label + ':':68} {per_request_us(one, args.requests):6.1f} µs CPU per request")
    if args.baseline:
        costs = baseline_us(args.baseline, args.requests)
        labels = ("sampled", "an unsampled request", "unsampled, no downstream call")
        for label, cost in zip(labels, costs, strict=True):
            label = f"hand-written X-Ray path at {args.baseline}, {label}:"
            print(f"{label:68} {cost:6.1f} µs CPU per request")
    otel = otel_request()
    if otel is None:
        print("OpenTelemetry SDK: not installed (see the module docstring)")
        return 0
    cost = per_request_us(otel, args.requests)
    label = "OpenTelemetry SDK (spans dropped, not sent):"
    print(f"{label:68} {cost:6.1f} µs CPU per request")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
