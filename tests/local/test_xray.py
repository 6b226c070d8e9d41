"""The twin's X-Ray daemon: segment documents, the bounded store, inferred load balancer
and discovery spans, the service map, and the UDP endpoint over a real socket."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from fargo.local.elb.names import lb_dns_name
from fargo.local.xray.daemon import XRayDaemon
from fargo.local.xray.segments import BadSegment, parse_datagram
from fargo.local.xray.service_graph import Topology, percentile, service_map, trace_spans
from fargo.local.xray.store import TraceStore
from fargo.spec import load_spec

SPEC = load_spec(Path(__file__).resolve().parents[2] / "fargo.yaml")  # the reference system
TRACE = "1-6b110e49-c967ee96d8129534853b0d0d"
HEADER = b'{"format": "json", "version": 1}\n'
INTERNAL = lb_dns_name(SPEC, "internal")
DISCOVERY = "private.backend.microservice.local"


def document(
    name: str,
    segment_id: str,
    start: float,
    end: float,
    *,
    parent: str | None = None,
    status: int = 200,
    calls: list[dict[str, Any]] | None = None,
    trace: str = TRACE,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": name,
        "id": segment_id,
        "trace_id": trace,
        "start_time": start,
        "end_time": end,
        "origin": "AWS::ECS::Container",
        "http": {
            "request": {"method": "GET", "url": f"http://x/{name}"},
            "response": {"status": status},
        },
    }
    if parent is not None:
        doc["parent_id"] = parent
    if calls:
        doc["subsegments"] = calls
    return doc


def call(sub_id: str, host: str, start: float, end: float, status: int = 200) -> dict[str, Any]:
    return {
        "id": sub_id,
        "name": host,
        "namespace": "remote",
        "start_time": start,
        "end_time": end,
        "http": {
            "request": {"method": "GET", "url": f"http://{host}:8090/endpoint"},
            "response": {"status": status},
        },
    }


def datagram(doc: dict[str, Any]) -> bytes:
    return HEADER + json.dumps(doc).encode()


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
