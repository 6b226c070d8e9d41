"""The twin's X-Ray daemon: segment documents, the bounded store, inferred load balancer
and discovery spans, the service map, and the UDP endpoint over a real socket."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from tests.local.xray_documents import (
    DISCOVERY,
    HEADER,
    INTERNAL,
    SPEC,
    TRACE,
    call,
    datagram,
    document,
)

from fargo.local.caddy.access_entries import from_caddy
from fargo.local.elb.access_log import AlbNames
from fargo.local.xray.daemon import XRayDaemon
from fargo.local.xray.load_balancer_entries import LoadBalancerEntry, from_access_log
from fargo.local.xray.segments import BadSegment, parse_datagram
from fargo.local.xray.service_graph import Topology, percentile, service_map, trace_spans
from fargo.local.xray.store import TraceStore

# /api/private-with-alb: backend-public (10 ms) calls the internal ALB (8 ms), whose target
# backend-private-with-alb answers in 5 ms: the load balancer's own time is 3 ms.
THROUGH_ALB = [
    document(
        "backend-public",
        "aaaaaaaaaaaaaaa1",
        100.000,
        100.010,
        calls=[call("bbbbbbbbbbbbbbb1", INTERNAL, 100.001, 100.009)],
    ),
    document(
        "backend-private-with-alb", "ccccccccccccccc1", 100.002, 100.007, parent="bbbbbbbbbbbbbbb1"
    ),
]


# -- documents ------------------------------------------------------------------------


def test_a_segment_document_is_parsed_with_its_calls() -> None:
    segment = parse_datagram(datagram(THROUGH_ALB[0]))
    assert (segment.trace_id, segment.id, segment.parent_id) == (TRACE, "aaaaaaaaaaaaaaa1", None)
    assert segment.status == 200 and segment.url == "http://x/backend-public"
    (made,) = segment.calls
    assert made.name == INTERNAL and made.status == 200


def test_a_call_made_inside_a_handlers_own_subsegment_is_found() -> None:
    local = {
        "id": "ddddddddddddddd1",
        "name": "price lookup",
        "start_time": 100.001,
        "end_time": 100.009,
        "subsegments": [call("bbbbbbbbbbbbbbb1", INTERNAL, 100.002, 100.008)],
    }
    doc = document("backend-public", "aaaaaaaaaaaaaaa1", 100.0, 100.01, calls=[local])
    segment = parse_datagram(datagram(doc))
    (made,) = segment.calls
    assert (made.id, made.name) == ("bbbbbbbbbbbbbbb1", INTERNAL)
    spans = trace_spans([segment, parse_datagram(datagram(THROUGH_ALB[1]))], Topology.of(SPEC))
    by_id = {span.id: span for span in spans}
    callee = next(span for span in spans if span.name == "backend-private-with-alb")
    alb = by_id[str(callee.parent_id)]  # under the internal ALB the call reached, not a client
    assert (alb.kind, alb.parent_id) == ("load_balancer", "bbbbbbbbbbbbbbb1")


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b'{"name": "x"}', "no header line"),
        (HEADER + b"{", "not JSON"),
        (datagram({**THROUGH_ALB[1], "trace_id": "abc"}), "trace_id 'abc'"),
        (datagram({**THROUGH_ALB[1], "id": "xyz"}), "id 'xyz': expected 16 hex"),
        (datagram({**THROUGH_ALB[1], "end_time": 1.0}), "before start_time"),
        (datagram({**THROUGH_ALB[1], "in_progress": True}), "in-progress"),
        (HEADER + b" " * 70000, "at most 65536"),
    ],
)
def test_bad_datagrams_say_what_is_wrong(data: bytes, problem: str) -> None:
    with pytest.raises(BadSegment, match=problem):
        parse_datagram(data)


# -- the store ------------------------------------------------------------------------


def test_store_keeps_the_newest_traces_within_its_bounds() -> None:
    store = TraceStore(max_traces=2, max_segments_per_trace=1)
    for n in range(3):
        trace = f"1-6b110e49-{n:024x}"
        store.add(parse_datagram(datagram({**THROUGH_ALB[1], "trace_id": trace})))
    assert [t for t, _ in store.traces()] == [f"1-6b110e49-{n:024x}" for n in (1, 2)]
    with pytest.raises(LookupError, match="keeps the last 2"):
        store.trace(f"1-6b110e49-{0:024x}")
    store.add(parse_datagram(datagram({**THROUGH_ALB[0], "trace_id": f"1-6b110e49-{2:024x}"})))
    assert store.dropped == 1 and len(store.trace(f"1-6b110e49-{2:024x}")) == 1


# -- inferred spans -------------------------------------------------------------------


def spans_of(docs: list[dict[str, Any]]) -> list[Any]:
    return trace_spans([parse_datagram(datagram(d)) for d in docs], Topology.of(SPEC))


def test_a_trace_through_both_load_balancers() -> None:
    spans = spans_of(THROUGH_ALB)
    assert [(s.kind, s.name) for s in spans] == [
        ("client", "client"),
        ("load_balancer", "public"),
        ("service", "backend-public"),
        ("call", INTERNAL),
        ("load_balancer", "internal"),
        ("service", "backend-private-with-alb"),
    ]
    internal = spans[4]
    assert internal.inferred and internal.parent_id == "bbbbbbbbbbbbbbb1"
    assert internal.own_ms == pytest.approx(3.0, abs=1e-6)  # 8 ms call - 5 ms in the target
    assert spans[5].parent_id == internal.id
    assert spans[1].own_ms == 0.0 and spans[2].parent_id == spans[1].id


def test_a_call_through_discovery_and_a_failed_call() -> None:
    spans = spans_of(
        [
            document(
                "backend-public",
                "aaaaaaaaaaaaaaa2",
                1.0,
                1.1,
                status=502,
                calls=[call("bbbbbbbbbbbbbbb2", DISCOVERY, 1.01, 1.09, status=502)],
            )
        ]
    )
    found = {s.name: s for s in spans}
    assert found[DISCOVERY].kind == "discovery" and found[DISCOVERY].status == 502
    assert found[DISCOVERY].own_ms == pytest.approx(80.0)  # no callee answered: all its own


def test_service_map_edges_with_counts_errors_and_percentiles() -> None:
    failed = [
        document(
            "backend-public",
            "aaaaaaaaaaaaaaa3",
            2.0,
            2.02,
            status=503,
            trace="1-6b110e49-000000000000000000000003",
            calls=[call("bbbbbbbbbbbbbbb3", INTERNAL, 2.001, 2.019, status=503)],
        )
    ]
    graph = service_map([spans_of(THROUGH_ALB), spans_of(failed)])
    edges = {(e["source"], e["target"]): e for e in graph["edges"]}
    assert set(edges) == {
        ("client", "public"),
        ("public", "backend-public"),
        ("backend-public", "internal"),
        ("internal", "backend-private-with-alb"),
    }
    to_internal = edges[("backend-public", "internal")]
    assert (to_internal["requests"], to_internal["faults"], to_internal["fault_rate"]) == (
        2,
        1,
        0.5,
    )
    assert to_internal["latency_ms"]["p50"] == pytest.approx(8.0)
    assert to_internal["latency_ms"]["p99"] == pytest.approx(18.0)
    assert edges[("internal", "backend-private-with-alb")]["requests"] == 1
    types = {n["name"]: n["type"] for n in graph["nodes"]}
    assert types["internal"] == "AWS::ElasticLoadBalancingV2::LoadBalancer"
    assert types["client"] == "client" and types["backend-public"] == "AWS::ECS::Container"


def through_discovery(n: int, *, answered: bool = True) -> list[dict[str, Any]]:
    """/api/private, trace ``n``: backend-public (30 ms) calls backend-private by its Cloud
    Map name (20 ms), and backend-private answers in 15 ms; not ``answered``: the call
    fails with a 502 and backend-private sends no segment."""
    trace = f"1-6b110e49-{n:024x}"
    caller, made = f"{n:015x}a", f"{n:015x}b"
    status = 200 if answered else 502
    public = document(
        "backend-public",
        caller,
        n + 0.000,
        n + 0.030,
        status=status,
        trace=trace,
        calls=[call(made, DISCOVERY, n + 0.005, n + 0.025, status=status)],
    )
    if not answered:
        return [public]
    private = document(
        "backend-private", f"{n:015x}c", n + 0.008, n + 0.023, parent=made, trace=trace
    )
    return [public, private]


def test_a_call_by_its_cloud_map_name_is_a_discovery_node_between_caller_and_callee() -> None:
    traces = [spans_of(through_discovery(n)) for n in (1, 2)]
    traces.append(spans_of(through_discovery(3, answered=False)))

    graph = service_map(traces)

    nodes = {n["name"]: n for n in graph["nodes"]}
    assert nodes[DISCOVERY]["type"] == "AWS::ServiceDiscovery::Service"
    assert (nodes[DISCOVERY]["requests"], nodes[DISCOVERY]["faults"]) == (3, 1)
    edges = {(e["source"], e["target"]): e for e in graph["edges"]}
    assert set(edges) == {
        ("client", "public"),
        ("public", "backend-public"),
        ("backend-public", DISCOVERY),
        (DISCOVERY, "backend-private"),
    }
    to_discovery = edges[("backend-public", DISCOVERY)]
    assert (to_discovery["requests"], to_discovery["faults"]) == (3, 1)
    assert to_discovery["latency_ms"]["p50"] == pytest.approx(20.0)  # the call, as measured
    from_discovery = edges[(DISCOVERY, "backend-private")]
    assert (from_discovery["requests"], from_discovery["faults"]) == (2, 0)  # answered ones
    assert from_discovery["latency_ms"]["p50"] == pytest.approx(15.0)  # backend-private's
    assert graph["traces"] == 3


# -- load balancer spans from the access logs ---------------------------------------------


def caddy_entry(
    listener: str,
    header: tuple[str, str, str],
    ended: float,
    duration: float,
    *,
    status: int = 200,
    target: str | None = "127.0.11.4:8090",
    target_latency: float | None = None,
) -> LoadBalancerEntry:
    """A Caddy access-log entry (as it writes it), converted as the control plane does."""
    field, trace, rest = header
    raw: dict[str, Any] = {
        "ts": ended,
        "logger": f"http.log.access.{listener}",
        "request": {"remote_ip": "127.0.0.1", "remote_port": "40866", "method": "GET"},
        "duration": duration,
        "status": status,
        "alb_route": "1|forward|backend-public",
        "alb_trace_field": field,
        "alb_trace_id": trace,
        "alb_trace_rest": rest,
    }
    if target is not None and target_latency is not None:
        raw |= {"alb_target": target, "alb_target_latency": target_latency}
        raw["alb_target_status"] = status
    converted = from_caddy(raw, AlbNames(SPEC))
    assert converted is not None
    entry = from_access_log(converted)
    assert entry is not None
    return entry


# The public ALB got the request at 99.998 and answered at 100.011 (13 ms, 10 in the
# target); the internal ALB started the trace of its caller's call at 100.0015, for 7 ms.
PUBLIC_ENTRY = ("public-443", ("Root", TRACE, ""), 100.011, 0.013)
INTERNAL_HEADER = (
    "Self",
    "1-0000abcd-" + "1" * 24,
    f";Root={TRACE};Parent=bbbbbbbbbbbbbbb1;Sampled=1",
)


def test_an_access_log_entry_gives_the_load_balancers_span_its_own_timing() -> None:
    entries = [
        caddy_entry(*PUBLIC_ENTRY, target_latency=0.010),
        caddy_entry("internal-8090", INTERNAL_HEADER, 100.0085, 0.007, target_latency=0.005),
    ]
    assert entries[1].trace_id == TRACE and entries[1].parent_id == "bbbbbbbbbbbbbbb1"
    segments = [parse_datagram(datagram(d)) for d in THROUGH_ALB]
    spans = trace_spans(segments, Topology.of(SPEC), entries)
    found = {s.name: s for s in spans}
    public, internal = found["public"], found["internal"]
    assert not public.inferred and not internal.inferred
    assert (public.start, public.end) == pytest.approx((99.998, 100.011))
    assert public.own_ms == pytest.approx(3.0, abs=1e-3)  # 13 ms - 10 ms in the target
    assert public.target == "127.0.11.4:8090" and public.status == 200
    assert internal.own_ms == pytest.approx(2.0, abs=1e-3)  # 7 ms - 5 ms
    assert internal.parent_id == "bbbbbbbbbbbbbbb1"
    assert found["backend-private-with-alb"].parent_id == internal.id
    # The client covers the load balancer's time, before and after the first segment.
    assert (found["client"].start, found["client"].end) == pytest.approx((99.998, 100.011))
    assert [s.name for s in spans][:3] == ["client", "public", "backend-public"]
    # Without the entries (not come yet): the inferred spans, the same ids.
    inferred = {s.name: s for s in trace_spans(segments, Topology.of(SPEC))}
    assert inferred["public"].inferred and inferred["public"].own_ms == 0.0
    assert inferred["public"].id == public.id and inferred["internal"].id == internal.id


def test_a_502_of_the_load_balancer_is_a_fault_on_its_node() -> None:
    # backend-public's call to the internal ALB got a 502: no target answered.
    segment = document(
        "backend-public",
        "aaaaaaaaaaaaaaa1",
        100.000,
        100.010,
        status=502,
        calls=[call("bbbbbbbbbbbbbbb1", INTERNAL, 100.001, 100.009, status=502)],
    )
    failed = caddy_entry("internal-8090", INTERNAL_HEADER, 100.0085, 0.007, status=502)
    spans = trace_spans([parse_datagram(datagram(segment))], Topology.of(SPEC), [failed])
    internal = next(s for s in spans if s.name == "internal")
    assert (internal.status, internal.target_status, internal.inferred) == (502, None, False)
    assert internal.own_ms == pytest.approx(7.0, abs=1e-3)  # all of it the load balancer's
    nodes = {n["name"]: n for n in service_map([spans])["nodes"]}
    assert nodes["internal"]["faults"] == 1 and nodes["internal"]["fault_rate"] == 1.0
    assert nodes["internal"]["latency_ms"]["p50"] == pytest.approx(7.0, abs=1e-3)


def test_an_entry_no_segment_matched_is_a_span_under_the_client() -> None:
    retried = caddy_entry("public-443", ("Root", TRACE, ""), 90.0, 0.004, status=503, target=None)
    spans = trace_spans([parse_datagram(datagram(THROUGH_ALB[0]))], Topology.of(SPEC), [retried])
    publics = [s for s in spans if s.name == "public"]
    assert len(publics) == 2 and {s.status for s in publics} == {200, 503}
    assert spans[0].kind == "client" and spans[0].start == pytest.approx(89.996)


def test_store_keeps_entries_with_their_trace_whichever_comes_first() -> None:
    store = TraceStore(max_traces=2)
    early = caddy_entry(*PUBLIC_ENTRY, target_latency=0.010)
    store.add_entry(early)  # before its trace's first segment
    store.add(parse_datagram(datagram(THROUGH_ALB[0])))
    late = caddy_entry("internal-8090", INTERNAL_HEADER, 100.0085, 0.007, target_latency=0.005)
    store.add_entry(late)
    assert store.entries(TRACE) == [early, late]
    # Entries of traces never sampled wait, bounded, and go with no trace.
    for n in range(5):
        other = "1-6b110e49-" + f"{n:024x}"
        store.add_entry(caddy_entry("public-443", ("Root", other, ""), 1.0, 0.001))
    assert store.entries("1-6b110e49-" + f"{0:024x}") == []
    assert len(store._waiting) == 2
    # A waiting entry joins its trace's first segment; a trace that goes takes its own.
    for n in (0, 4):
        store.add(parse_datagram(datagram({**THROUGH_ALB[1], "trace_id": f"1-6b110e49-{n:024x}"})))
    assert store.entries(TRACE) == []  # gone with its trace (2 kept)
    assert store.entries(f"1-6b110e49-{0:024x}") == []  # its entry waited too long
    assert [e.start for e in store.entries(f"1-6b110e49-{4:024x}")] == [pytest.approx(0.999)]


def test_percentile_is_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 99)) == (50, 95, 99)
    assert percentile([7.0], 99) == 7.0


# -- the UDP endpoint ---------------------------------------------------------------------


async def test_daemon_receives_segments_over_udp() -> None:
    store = TraceStore()
    daemon = XRayDaemon(store, "127.0.0.1", 0)
    assert daemon.validate() == []
    await daemon.start()
    try:
        host, port = daemon.address.split(":")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for doc in THROUGH_ALB:
                sender.sendto(datagram(doc), (host, int(port)))
            sender.sendto(b"not a segment", (host, int(port)))
        for _ in range(100):
            if store.received == 2 and store.rejected == 1:
                break
            await asyncio.sleep(0.01)
        assert [s.name for s in store.trace(TRACE)] == [
            "backend-public",
            "backend-private-with-alb",
        ]
        assert store.rejected == 1
    finally:
        await daemon.stop()
        await daemon.stop()  # idempotent


def test_daemon_port_in_use_is_a_located_problem() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        problems = XRayDaemon(TraceStore(), "127.0.0.1", port).validate()
    assert len(problems) == 1 and f"port {port}/udp on 127.0.0.1 is in use" in problems[0]
