"""CPU per traced request: ``service_kit.xray`` against the OpenTelemetry SDK.

What one traced ``/api/private`` request costs its service in tracing alone, timed in a
loop (no HTTP): read the incoming ``X-Amzn-Trace-Id``, open the request's segment (span),
a subsegment (client span) for the downstream call with the header for the callee, close
both and hand the segment over for sending.

- ``service_kit.xray``: `TraceHeader.parse`, `Segment`, `Segment.call`, `Segment.document`
  and one UDP ``sendto`` to a loopback socket (and the receiving side's ``recv``); also an
  unsampled request (``Sampled=0``: parsed and propagated, nothing sent);
- OpenTelemetry: the SDK's ``TracerProvider`` with the AWS X-Ray id generator and
  propagator (``opentelemetry-sdk-extension-aws``, ``opentelemetry-propagator-aws-xray``),
  a ``BatchSpanProcessor`` with an exporter that drops the spans (so the figure leaves
  out encoding and sending, which the collector path adds on top).

    python bench/tracing_overhead_bench.py [--requests 20000]

OpenTelemetry is optional: without it only the first figure is printed. It is not a
dependency of the services; install it in a scratch venv to compare.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "services"))

from service_kit.xray import Segment, TraceHeader

INCOMING = "Self=1-67891234-12456789abcdef012345678;Root=1-5759e988-bd862e3fe1be46a994272793"


def service_kit_request(sink: socket.socket, address: tuple[str, int]) -> Callable[[], None]:
    def one() -> None:
        header = TraceHeader.parse(INCOMING)
        assert header is not None
        segment = Segment(header.root, header.parent, True, time.time())
        sub, _outgoing = segment.call("private.backend.microservice.local", "http://p/endpoint")
        assert sub is not None
        sub.close(200)
        datagram = segment.document(
            "backend-public", end=time.time(), method="GET", url="http://x/api/private", status=200
        )
        sink.sendto(datagram, address)

    return one


def service_kit_unsampled() -> Callable[[], None]:
    """The common case under the default rule: a decision, propagation, nothing sent."""
    incoming = INCOMING + ";Sampled=0"

    def one() -> None:
        header = TraceHeader.parse(incoming)
        assert header is not None
        segment = Segment(header.root, header.parent, False, time.time())
        segment.call("private.backend.microservice.local", "http://p/endpoint")

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


def per_request_us(one: Callable[[], None], requests: int) -> float:
    for _ in range(1000):
        one()
    started = time.process_time()
    for _ in range(requests):
        one()
    return (time.process_time() - started) / requests * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    args = parser.parse_args(argv)
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.setblocking(False)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.setblocking(False)

    def send_and_drain() -> Callable[[], None]:
        one = service_kit_request(sender, receiver.getsockname())

        def both() -> None:
            one()
            with contextlib.suppress(BlockingIOError):
                receiver.recv(65536)

        return both

    kit = per_request_us(send_and_drain(), args.requests)
    print(f"service_kit.xray (incl. sendto + the daemon's recv): {kit:6.1f} µs CPU per request")
    unsampled = per_request_us(service_kit_unsampled(), args.requests)
    print(
        f"service_kit.xray, an unsampled request:             {unsampled:6.1f} µs CPU per request"
    )
    otel = otel_request()
    if otel is None:
        print("OpenTelemetry SDK: not installed (see the module docstring)")
        return 0
    cost = per_request_us(otel, args.requests)
    print(f"OpenTelemetry SDK (spans dropped, not sent):        {cost:6.1f} µs CPU per request")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
