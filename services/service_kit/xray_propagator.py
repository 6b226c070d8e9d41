"""X-Ray's trace header through OpenTelemetry's propagation API.

`XRayPropagator` is a ``TextMapPropagator`` for ``X-Amzn-Trace-Id``
(``Root=1-…;Parent=…;Sampled=1``): ``extract`` turns the caller's header into a remote
`service_kit.otel.PropagatedSpan` in the returned context, ``inject`` writes the current
span's header for a callee. `service_kit.server` installs it as the global propagator, so
``opentelemetry.propagate.inject(headers)`` in a handler writes the header too.

Not ``opentelemetry-propagator-aws-xray``'s ``AwsXRayPropagator``, for X-Ray's own
semantics it drops: ALB's header for a new trace is ``Root=…`` alone (``Self=…;Root=…``),
with no ``Parent``, which that propagator rejects (the service would start another trace
instead of continuing ALB's); and a header without ``Sampled`` leaves the decision to the
service (X-Ray's sampling rules), where that propagator reads "not sampled". Any
``TextMapPropagator``'s span (its ``SpanContext``) is injected all the same.
"""

from __future__ import annotations

from typing import cast

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)

from service_kit.otel import PropagatedSpan, XRaySpan, xray_trace_id
from service_kit.xray import TraceHeader

HEADER = "X-Amzn-Trace-Id"
HEADER_LOWER = HEADER.lower()  # as ASGI servers and HTTP/2 give header names


class XRayPropagator(TextMapPropagator):
    """``X-Amzn-Trace-Id`` in and out (see the module docstring)."""

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        if context is None:
            context = Context()
        values = getter.get(carrier, HEADER)
        if not values:
            values = getter.get(carrier, HEADER_LOWER)
            if not values:
                return context
        header = TraceHeader.parse(values[0])
        if header is None:  # no Root: a new trace
            return context
        span = PropagatedSpan(header.root, header.parent, header.sampled, is_remote=True)
        return trace.set_span_in_context(span, context)

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        span = trace.get_current_span(context)
        cls = type(span)
        if cls is XRaySpan or cls is PropagatedSpan:
            setter.set(carrier, HEADER, cast("XRaySpan | PropagatedSpan", span).trace_header())
            return
        span_context = span.get_span_context()
        if not span_context.is_valid:
            return
        sampled = "1" if span_context.trace_flags.sampled else "0"
        setter.set(
            carrier,
            HEADER,
            f"Root={xray_trace_id(span_context.trace_id)};"
            f"Parent={span_context.span_id:016x};Sampled={sampled}",
        )

    @property
    def fields(self) -> set[str]:
        return {HEADER}
