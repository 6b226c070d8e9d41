"""The OpenTelemetry tracing API, implemented lean: spans become X-Ray segments.

The services and their handlers trace through the standard ``opentelemetry.trace``
interfaces (``opentelemetry-api`` only, no SDK)::

    from opentelemetry import trace

    tracer = trace.get_tracer(__name__)

    async def handler(request: Request) -> Response:
        with tracer.start_as_current_span("price lookup") as span:
            span.set_attribute("sku", sku)
            ...

`service_kit.server` installs an `XRayTracerProvider` as the global provider when
``AWS_XRAY_DAEMON_ADDRESS`` is set (and `service_kit.xray_propagator.XRayPropagator` as
the global propagator). Its spans map onto X-Ray as the AWS Distro for OpenTelemetry's
X-Ray exporter maps them:

- a span without a local parent (the request's server span, continuing the caller's
  ``X-Amzn-Trace-Id``) is a **segment**, named after the service
  (``AWS_XRAY_TRACING_NAME``), with ``origin`` ``AWS::ECS::Container``;
- a span with a local parent is a **subsegment** inside its parent, named after the span;
  client (and producer) spans have the ``remote`` namespace (a downstream call);
- HTTP attributes (``http.request.method``, ``url.full``, ``user_agent.original``,
  ``http.response.status_code``, or their older names) fill ``http``; the status code
  sets ``error`` (4xx), ``throttle`` (429) and ``fault`` (5xx), a span whose status is
  ``ERROR`` without one is a ``fault``; recorded exceptions go to ``cause``; other
  attributes to ``metadata.default``, events to ``metadata.otel.events``;
- when the segment ends, its document (`service_kit.xray_document`), its ended
  subsegments inside, is sent as one datagram to the X-Ray daemon
  (`service_kit.xray.Emitter`); a subsegment still open then is lost.

Sampling is X-Ray's (`service_kit.xray.Sampler`: the caller's decision, else the default
rule). An unsampled span is a `PropagatedSpan`: not recording, it only carries the trace
id for propagation, and makes its own id only if a downstream call needs one. The SDK
(span processors, exporters, resources, a collector) is what this module leaves out: it
cost several times as much per request (docs/benchmarks.md, "Tracing").
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, cast

from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.trace import (
    Link,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    get_current_span,
)
from opentelemetry.util import types
from opentelemetry.util._decorator import _agnosticcontextmanager

from service_kit.xray import HEADER_LINE, Emitter, Sampler, new_id, new_trace_id
from service_kit.xray_document import document

SAMPLED_FLAGS = TraceFlags(TraceFlags.SAMPLED)
UNSAMPLED_FLAGS = TraceFlags(TraceFlags.DEFAULT)
_LOW_96_BITS = (1 << 96) - 1


def xray_trace_id(trace_id: int) -> str:
    """An OpenTelemetry trace id (128 bits) as X-Ray writes it: the first 32 bits are the
    epoch seconds when X-Ray made it (``1-<8 hex>-<24 hex>``)."""
    return f"1-{trace_id >> 96:08x}-{trace_id & _LOW_96_BITS:024x}"


def otel_trace_id(xray_id: str) -> int:
    """``1-5759e988-bd862e3fe1be46a994272793`` as OpenTelemetry's 128-bit integer."""
    return int(xray_id[2:10] + xray_id[11:], 16)


def _seconds(nanoseconds: int | None) -> float:
    return time.time() if nanoseconds is None else nanoseconds / 1e9


class PropagatedSpan(trace.Span):
    """A span that records nothing: the caller's span, as a propagator extracted it
    (``remote``), or an unsampled local span. It carries the X-Ray trace id and the
    sampling decision (None: the caller left it to this service) downstream."""

    __slots__ = ("_context", "_id", "is_remote", "sampled", "trace_id")

    def __init__(
        self, trace_id: str, span_id: str | None, sampled: bool | None, *, is_remote: bool
    ) -> None:
        self.trace_id = trace_id
        self._id = span_id
        self.sampled = sampled
        self.is_remote = is_remote
        self._context: SpanContext | None = None

    @property
    def id(self) -> str | None:
        """The span's id: the caller's for a remote span (None when it sent none), made
        when first asked for a local one."""
        if self._id is None and not self.is_remote:
            self._id = new_id()
        return self._id

    def trace_header(self) -> str:
        """The ``X-Amzn-Trace-Id`` value that continues this span's trace."""
        text = f"Root={self.trace_id}"
        span_id = self.id
        if span_id is not None:
            text += f";Parent={span_id}"
        if self.sampled is not None:
            text += ";Sampled=1" if self.sampled else ";Sampled=0"
        return text

    def get_span_context(self) -> SpanContext:
        if self._context is None:
            span_id = self.id
            self._context = SpanContext(
                trace_id=otel_trace_id(self.trace_id),
                span_id=trace.INVALID_SPAN_ID if span_id is None else int(span_id, 16),
                is_remote=self.is_remote,
                trace_flags=SAMPLED_FLAGS if self.sampled else UNSAMPLED_FLAGS,
            )
        return self._context

    def is_recording(self) -> bool:
        return False

    def end(self, end_time: int | None = None) -> None:
        pass

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        pass

    def set_attribute(self, key: str, value: types.AnyValue) -> None:
        pass

    def add_event(
        self, name: str, attributes: types.Attributes = None, timestamp: int | None = None
    ) -> None:
        pass

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        pass

    def update_name(self, name: str) -> None:
        pass

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        pass

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        pass


class XRaySpan(trace.Span):
    """A sampled span: a segment (``segment is self``) or a subsegment of ``segment``."""

    __slots__ = (
        "_context",
        "attributes",
        "children",
        "end_time",
        "events",
        "exceptions",
        "id",
        "kind",
        "name",
        "parent_id",
        "provider",
        "segment",
        "start_time",
        "status",
        "trace_id",
    )

    def __init__(
        self,
        provider: XRayTracerProvider,
        name: str,
        kind: SpanKind,
        trace_id: str,
        parent: XRaySpan | None,
        parent_id: str | None,
        attributes: types.Attributes,
        start_time: float,
    ) -> None:
        self.provider = provider
        self.name = name
        self.kind = kind
        self.trace_id = trace_id
        self.id = new_id()
        self.parent_id = parent_id  # a segment's: the caller's (sub)segment id
        self.start_time = start_time
        self.end_time = 0.0
        self.attributes: dict[str, types.AnyValue] = dict(attributes) if attributes else {}
        self.status = StatusCode.UNSET
        self.children: list[XRaySpan] | None = None
        self.events: list[dict[str, Any]] | None = None
        self.exceptions: list[dict[str, Any]] | None = None
        self._context: SpanContext | None = None
        if parent is None:
            self.segment = self
        else:
            self.segment = parent.segment
            if parent.children is None:
                parent.children = [self]
            else:
                parent.children.append(self)

    def trace_header(self) -> str:
        """The ``X-Amzn-Trace-Id`` value for a callee to continue the trace under this span."""
        return f"Root={self.trace_id};Parent={self.id};Sampled=1"

    def get_span_context(self) -> SpanContext:
        if self._context is None:
            self._context = SpanContext(
                trace_id=otel_trace_id(self.trace_id),
                span_id=int(self.id, 16),
                is_remote=False,
                trace_flags=SAMPLED_FLAGS,
            )
        return self._context

    def is_recording(self) -> bool:
        return not self.end_time

    def end(self, end_time: int | None = None) -> None:
        if self.end_time:
            return
        self.end_time = _seconds(end_time)
        if self.segment is self:
            self.provider.emitter.send(HEADER_LINE + document(self).encode())

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        if not self.end_time:
            self.attributes.update(attributes)

    def set_attribute(self, key: str, value: types.AnyValue) -> None:
        if not self.end_time:
            self.attributes[key] = value

    def add_event(
        self, name: str, attributes: types.Attributes = None, timestamp: int | None = None
    ) -> None:
        if self.end_time:
            return
        event: dict[str, Any] = {"name": name, "timestamp": _seconds(timestamp)}
        if attributes:
            event["attributes"] = dict(attributes)
        if self.events is None:
            self.events = []
        self.events.append(event)

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        pass  # X-Ray segments have no links

    def update_name(self, name: str) -> None:
        if not self.end_time:
            self.name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self.end_time:
            return
        code = status.status_code if isinstance(status, Status) else status
        if code is not StatusCode.UNSET and self.status is not StatusCode.OK:
            self.status = code  # OK is final, as the specification says

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        if self.end_time:
            return
        record = {"id": new_id(), "type": type(exception).__name__, "message": str(exception)}
        if self.exceptions is None:
            self.exceptions = []
        self.exceptions.append(record)


class XRayTracer(trace.Tracer):
    """Starts `XRaySpan` s (sampled) and `PropagatedSpan` s (not); see the module docstring."""

    def __init__(self, provider: XRayTracerProvider) -> None:
        self.provider = provider

    def start_span(
        self,
        name: str,
        context: context_api.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        parent = get_current_span(context)
        now = _seconds(start_time)
        provider = self.provider
        cls = type(parent)
        if cls is XRaySpan:
            parent = cast(XRaySpan, parent)
            if parent.end_time:  # its segment is sent: a segment of its own, same trace
                return provider.root(name, kind, parent.trace_id, parent.id, True, attributes, now)
            return XRaySpan(provider, name, kind, parent.trace_id, parent, None, attributes, now)
        if cls is PropagatedSpan:
            parent = cast(PropagatedSpan, parent)
            if not parent.is_remote:
                # Under an unsampled span: not sampled either, and nothing to tell apart, so
                # the span itself stands for its children (their callees see its id).
                return parent
            return provider.root(
                name, kind, parent.trace_id, parent.id, parent.sampled, attributes, now
            )
        span_context = parent.get_span_context()
        if not span_context.is_valid:  # no parent: a new trace
            return provider.root(name, kind, new_trace_id(now), None, None, attributes, now)
        # Another implementation's span (another propagator's, say): continue its trace.
        return provider.root(
            name,
            kind,
            xray_trace_id(span_context.trace_id),
            f"{span_context.span_id:016x}",
            span_context.trace_flags.sampled if span_context.is_remote else None,
            attributes,
            now,
        )

    @_agnosticcontextmanager
    def start_as_current_span(
        self,
        name: str,
        context: context_api.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[trace.Span]:
        span = self.start_span(name, context, kind, attributes, links, start_time)
        # What trace.use_span does, without a second generator-based context manager.
        token = context_api.attach(trace.set_span_in_context(span))
        try:
            yield span
        except Exception as exc:  # as use_span: not BaseException (GeneratorExit, ...)
            if span.is_recording():
                if record_exception:
                    span.record_exception(exc)
                if set_status_on_exception:
                    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise
        finally:
            context_api.detach(token)
            if end_on_exit:
                span.end()


class XRayTracerProvider(trace.TracerProvider):
    """Every tracer of the process: the service's name (each segment's), the sampling rule
    and the emitter segments go out through."""

    def __init__(self, service_name: str, sampler: Sampler, emitter: Emitter) -> None:
        self.service_name = service_name
        self.sampler = sampler
        self.emitter = emitter
        self._tracer = XRayTracer(self)

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: types.Attributes = None,
    ) -> XRayTracer:
        # X-Ray documents do not say which library made a span: one tracer serves all.
        return self._tracer

    def root(
        self,
        name: str,
        kind: SpanKind,
        trace_id: str,
        parent_id: str | None,
        sampled: bool | None,
        attributes: types.Attributes,
        now: float,
    ) -> trace.Span:
        """A span without a local parent: a segment if sampled (``sampled`` None: by the
        sampling rule), else a `PropagatedSpan`."""
        if sampled is None:
            sampled = self.sampler.sample(now)
        if not sampled:
            return PropagatedSpan(trace_id, None, False, is_remote=False)
        return XRaySpan(self, name, kind, trace_id, None, parent_id, attributes, now)
