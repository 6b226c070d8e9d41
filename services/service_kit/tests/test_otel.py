"""The OpenTelemetry API implemented by `service_kit.otel` and
`service_kit.xray_propagator`: spans through ``opentelemetry.trace``'s interfaces become
X-Ray segment documents, sent to a real UDP socket standing for the daemon."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.propagators.textmap import DefaultGetter
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)

from service_kit.otel import (
    PropagatedSpan,
    XRaySpan,
    XRayTracer,
    XRayTracerProvider,
    otel_trace_id,
    xray_trace_id,
)
from service_kit.xray import HEADER_LINE, Emitter, Sampler, parse_datagram
from service_kit.xray_middleware import TRACE_HEADER_GETTER
from service_kit.xray_propagator import XRayPropagator

ROOT = "1-5759e988-bd862e3fe1be46a994272793"
ALB_HEADER = f"Self=1-67891234-12456789abcdef012345678;Root={ROOT}"


def _provider(daemon: socket.socket, rate: float = 1.0, reservoir: int = 1) -> XRayTracerProvider:
    emitter = Emitter(daemon.getsockname())
    return XRayTracerProvider("backend-public", Sampler(reservoir, rate), emitter)


def _received(daemon: socket.socket) -> dict[str, Any]:
    datagram = daemon.recv(65536)
    assert datagram.startswith(HEADER_LINE)
    return parse_datagram(datagram)


def _nothing_sent(daemon: socket.socket) -> bool:
    daemon.settimeout(0.2)
    try:
        daemon.recv(65536)
    except TimeoutError:
        return True
    return False


# -- ids ------------------------------------------------------------------------------


def test_trace_ids_convert_both_ways() -> None:
    as_int = otel_trace_id(ROOT)
    assert as_int == int("5759e988bd862e3fe1be46a994272793", 16)
    assert xray_trace_id(as_int) == ROOT


# -- the propagator -------------------------------------------------------------------


def test_extract_continues_albs_header_without_parent_or_decision() -> None:
    context = XRayPropagator().extract({"X-Amzn-Trace-Id": ALB_HEADER})
    span = trace.get_current_span(context)
    assert isinstance(span, PropagatedSpan)
    assert (span.trace_id, span.id, span.sampled, span.is_remote) == (ROOT, None, None, True)
    span_context = span.get_span_context()
    assert span_context.trace_id == otel_trace_id(ROOT) and span_context.is_remote


def test_extract_reads_lower_case_names_and_the_middlewares_carrier() -> None:
    header = f"Root={ROOT};Parent=53995c3f42cd8ad8;Sampled=0"
    propagator = XRayPropagator()
    for context in (
        propagator.extract({"x-amzn-trace-id": header}, getter=DefaultGetter()),
        propagator.extract(header.encode(), getter=TRACE_HEADER_GETTER),
    ):
        span = trace.get_current_span(context)
        assert isinstance(span, PropagatedSpan)
        assert (span.id, span.sampled) == ("53995c3f42cd8ad8", False)
        assert span.get_span_context().span_id == 0x53995C3F42CD8AD8


@pytest.mark.parametrize("carrier", [{}, {"X-Amzn-Trace-Id": "Sampled=1"}, {"other": "x"}])
def test_extract_without_a_root_leaves_the_context_alone(carrier: dict[str, str]) -> None:
    context = XRayPropagator().extract(carrier)
    assert trace.get_current_span(context) is trace.INVALID_SPAN


def test_inject_writes_another_implementations_span() -> None:
    foreign = NonRecordingSpan(
        SpanContext(otel_trace_id(ROOT), 0xABC, is_remote=False, trace_flags=TraceFlags(1))
    )
    carrier: dict[str, str] = {}
    XRayPropagator().inject(carrier, trace.set_span_in_context(foreign))
    assert carrier == {"X-Amzn-Trace-Id": f"Root={ROOT};Parent=0000000000000abc;Sampled=1"}
    XRayPropagator().inject(carrier := {}, trace.set_span_in_context(trace.INVALID_SPAN))
    assert carrier == {}
    assert XRayPropagator().fields == {"X-Amzn-Trace-Id"}


# -- spans as segments ----------------------------------------------------------------


def test_a_request_and_its_call_are_a_segment_and_a_remote_subsegment(
    daemon: socket.socket,
) -> None:
    provider = _provider(daemon)
    tracer = provider.get_tracer(__name__)
    propagator = XRayPropagator()
    parent = propagator.extract({"X-Amzn-Trace-Id": f"Root={ROOT};Parent=53995c3f42cd8ad8"})
    server = tracer.start_span("GET /api/private", parent, SpanKind.SERVER)
    server.set_attributes(
        {
            "http.request.method": "GET",
            "url.full": 'http://x/api/"private"',
            "user_agent.original": "curl/8",
        }
    )
    token = context_api.attach(trace.set_span_in_context(server, parent))
    try:
        client = tracer.start_span("private.backend.microservice.local", kind=SpanKind.CLIENT)
        headers: dict[str, str] = {}
        propagator.inject(headers, trace.set_span_in_context(client))
        client.set_attributes({"http.request.method": "GET", "url.full": "http://p/endpoint"})
        client.set_attribute("http.response.status_code", 504)
        client.end()
    finally:
        context_api.detach(token)
    assert isinstance(client, XRaySpan)
    assert headers == {"X-Amzn-Trace-Id": f"Root={ROOT};Parent={client.id};Sampled=1"}
    assert _nothing_sent(daemon)  # a subsegment travels inside its segment
    server.set_attribute("http.response.status_code", 504)
    server.end()

    doc = _received(daemon)
    assert doc["name"] == "backend-public"  # segments are named after the service
    assert doc["trace_id"] == ROOT and doc["parent_id"] == "53995c3f42cd8ad8"
    assert isinstance(server, XRaySpan) and doc["id"] == server.id
    assert doc["origin"] == "AWS::ECS::Container"
    assert doc["http"] == {
        "request": {"method": "GET", "url": 'http://x/api/"private"', "user_agent": "curl/8"},
        "response": {"status": 504},
    }
    assert doc["fault"] is True and "metadata" not in doc
    (call,) = doc["subsegments"]
    assert call["id"] == client.id and call["namespace"] == "remote"
    assert call["name"] == "private.backend.microservice.local"
    assert call["http"]["response"] == {"status": 504} and call["fault"] is True
    assert doc["start_time"] <= call["start_time"] <= call["end_time"] <= doc["end_time"]


def test_handler_spans_nest_with_attributes_events_status_and_exceptions(
    daemon: socket.socket,
) -> None:
    tracer = _provider(daemon).get_tracer(__name__)
    with tracer.start_as_current_span("GET /", kind=SpanKind.SERVER) as server:
        with tracer.start_as_current_span("price lookup", attributes={"sku": "a-1"}) as lookup:
            lookup.add_event("cache miss", {"tier": 2})
            with tracer.start_as_current_span("db"):
                pass
        with pytest.raises(KeyError), tracer.start_as_current_span("fails"):
            raise KeyError("nope")
        with tracer.start_as_current_span("status") as marked:
            marked.set_status(Status(StatusCode.ERROR, "bad"))
            marked.set_status(StatusCode.UNSET)  # does not clear it
        server.update_name("GET /renamed")
    doc = _received(daemon)
    assert "parent_id" not in doc and doc["trace_id"].startswith("1-")
    lookup_doc, failed, marked_doc = doc["subsegments"]
    assert lookup_doc["name"] == "price lookup" and "namespace" not in lookup_doc
    assert lookup_doc["metadata"]["default"] == {"sku": "a-1"}
    (event,) = lookup_doc["metadata"]["otel"]["events"]
    assert event["name"] == "cache miss" and event["attributes"] == {"tier": 2}
    assert [sub["name"] for sub in lookup_doc["subsegments"]] == ["db"]
    assert failed["fault"] is True
    (exception,) = failed["cause"]["exceptions"]
    assert exception["type"] == "KeyError" and "nope" in exception["message"]
    assert marked_doc["fault"] is True and "fault" not in doc


def test_client_errors_and_throttles_are_errors(daemon: socket.socket) -> None:
    tracer = _provider(daemon).get_tracer(__name__)
    for status, flags in ((404, {"error": True}), (429, {"error": True, "throttle": True})):
        span = tracer.start_span("GET /", kind=SpanKind.SERVER, attributes={"http.status_code": 1})
        span.set_attribute("http.status_code", status)  # the older attribute name
        span.end()
        doc = _received(daemon)
        assert {k: doc[k] for k in ("error", "throttle", "fault") if k in doc} == flags


def test_ending_twice_sends_once_and_ended_spans_stop_recording(daemon: socket.socket) -> None:
    span = _provider(daemon).get_tracer(__name__).start_span("x")
    assert span.is_recording()
    span.end()
    span.end()
    span.set_attribute("late", 1)
    assert not span.is_recording()
    first = _received(daemon)
    assert "metadata" not in first
    assert _nothing_sent(daemon)
    # A span started under it afterwards (work outliving the request) is a segment of its
    # own in the same trace, sampled as its parent was.
    tracer = _provider(daemon, rate=0.0, reservoir=0).get_tracer(__name__)
    tracer.start_span("later", trace.set_span_in_context(span)).end()
    late = _received(daemon)
    assert (late["trace_id"], late["parent_id"]) == (first["trace_id"], first["id"])


# -- sampling -------------------------------------------------------------------------


def test_the_callers_decision_is_obeyed_else_the_rule_decides(daemon: socket.socket) -> None:
    tracer = _provider(daemon, rate=0.0, reservoir=1).get_tracer(__name__)
    propagator = XRayPropagator()
    not_sampled = propagator.extract({"X-Amzn-Trace-Id": f"Root={ROOT};Sampled=0"})
    sampled = propagator.extract({"X-Amzn-Trace-Id": f"Root={ROOT};Sampled=1"})
    undecided = propagator.extract({"X-Amzn-Trace-Id": ALB_HEADER})
    assert not tracer.start_span("a", not_sampled, SpanKind.SERVER).is_recording()
    assert tracer.start_span("b", undecided, SpanKind.SERVER).is_recording()  # the reservoir
    assert not tracer.start_span("c", undecided, SpanKind.SERVER).is_recording()  # rate 0
    assert tracer.start_span("d", sampled, SpanKind.SERVER).is_recording()


def test_unsampled_spans_only_propagate(daemon: socket.socket) -> None:
    tracer = _provider(daemon, rate=0.0, reservoir=0).get_tracer(__name__)
    with tracer.start_as_current_span("GET /", kind=SpanKind.SERVER) as server:
        assert isinstance(server, PropagatedSpan) and not server.is_recording()
        server.set_attribute("ignored", True)
        child = tracer.start_span("call", kind=SpanKind.CLIENT)
        assert not child.is_recording()
        headers: dict[str, str] = {}
        XRayPropagator().inject(headers, trace.set_span_in_context(child))
    assert headers["X-Amzn-Trace-Id"] == f"Root={server.trace_id};Parent={server.id};Sampled=0"
    assert server.get_span_context().trace_flags == TraceFlags.DEFAULT
    assert _nothing_sent(daemon)


def test_a_foreign_remote_parent_is_continued(daemon: socket.socket) -> None:
    tracer: XRayTracer = _provider(daemon).get_tracer(__name__)
    foreign = NonRecordingSpan(
        SpanContext(otel_trace_id(ROOT), 0xABC, is_remote=True, trace_flags=TraceFlags(1))
    )
    tracer.start_span("x", trace.set_span_in_context(foreign), SpanKind.SERVER).end()
    doc = _received(daemon)
    assert (doc["trace_id"], doc["parent_id"]) == (ROOT, "0000000000000abc")
