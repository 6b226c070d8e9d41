"""The dashboard's hand-written sources (`tests.e2e.dashboard_sources`) held to the shapes
the twin serves: the metrics, the list of traces, a trace's spans, the service map and a
scaling activity, each compared with what the runtime makes of real segment documents
and what the scaler really logs. The page's test on the hand-written data stays a test of
the page on the twin's data."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, get_args

import pytest
from tests.e2e import dashboard_sources
from tests.local.xray_documents import (
    DISCOVERY,
    INTERNAL,
    SPEC,
    SPEC_PATH,
    datagram,
    hop,
)

from fargo.local.appautoscaling.metrics import Datapoint
from fargo.local.config import TwinConfig
from fargo.local.console.server import SCALING_PREFIX
from fargo.local.events import Event, configure_logging, event_files, parse_events, remove_handlers
from fargo.local.runtime import Runtime
from fargo.local.status import MetricsStatus
from fargo.local.xray.segments import parse_datagram
from fargo.local.xray.service_graph import ORIGINS, Kind

THROUGH_ALB = "1-6b110e49-00000000000000000000000a"
THROUGH_DISCOVERY = "1-6b110e49-00000000000000000000000b"


@pytest.fixture
def twin(tmp_path: Path) -> Runtime:
    """The reference system's runtime (not started), its trace store fed a request through
    the internal load balancer and one through Cloud Map, as the services send them."""
    config = TwinConfig(spec_path=SPEC_PATH, state_dir=tmp_path / "state", network_mode="loopback")
    runtime = Runtime(SPEC, config)
    documents = [
        *hop(THROUGH_ALB, "backend-public", INTERNAL, "backend-private-with-alb", 1.0, 1.01, 1),
        *hop(THROUGH_DISCOVERY, "backend-public", DISCOVERY, "backend-private", 2.0, 2.01, 2),
    ]
    for doc in documents:
        runtime.traces.add(parse_datagram(datagram(doc)))
    return runtime


def test_the_metrics_are_a_metrics_status_as_the_runtime_dumps_it() -> None:
    hand: dict[str, Any] = dashboard_sources.METRICS

    dumped = MetricsStatus.model_validate(hand).model_dump(mode="json")

    assert hand.keys() == dumped.keys()  # every field, as the runtime's JSON has them all
    for metric, as_dumped in zip(hand["metrics"], dumped["metrics"], strict=True):
        assert metric.keys() == as_dumped.keys()
        assert [d.keys() for d in metric["datapoints"]] == [
            d.keys() for d in as_dumped["datapoints"]
        ]


def test_the_trace_list_has_the_runtimes_keys(twin: Runtime) -> None:
    listed = twin.list_traces()

    assert dashboard_sources.TRACES.keys() == listed.keys()
    assert [dashboard_sources.SUMMARY.keys()] * 2 == [t.keys() for t in listed["traces"]]


def test_a_traces_spans_have_the_keys_kinds_and_origins_of_the_runtimes(twin: Runtime) -> None:
    answer = twin.get_trace(THROUGH_ALB)
    spans: list[dict[str, Any]] = answer["spans"]

    assert {**dashboard_sources.SUMMARY, "spans": []}.keys() == answer.keys()
    kinds = set(get_args(Kind))
    for span in dashboard_sources.SPANS:
        assert span.keys() == spans[0].keys(), span["id"]
        assert span["kind"] in kinds and span["origin"] == ORIGINS.get(span["kind"]), span["id"]
    # The hand-written trace has the kinds of spans a real one through the internal load
    # balancer has, in the same order.
    assert [s["kind"] for s in dashboard_sources.SPANS] == [s["kind"] for s in spans]


def test_the_service_map_has_the_runtimes_keys_and_node_types(twin: Runtime) -> None:
    graph = twin.get_service_map()
    hand = dashboard_sources.SERVICE_MAP

    assert hand.keys() == graph.keys()
    real_nodes = {node["type"]: node.keys() for node in graph["nodes"]}
    assert set(real_nodes) == set(ORIGINS.values()) - {"remote"}  # every kind, to compare
    for node in hand["nodes"]:
        assert node.keys() == real_nodes[node["type"]], node["name"]
    edge_keys = graph["edges"][0].keys()
    latency_keys = graph["edges"][0]["latency_ms"].keys()
    for edge in hand["edges"]:
        assert edge.keys() == edge_keys and edge["latency_ms"].keys() == latency_keys
    # A node the page draws for each end of an edge.
    names = {node["name"] for node in hand["nodes"]}
    assert all({edge["source"], edge["target"]} <= names for edge in hand["edges"])


def test_the_scaling_event_is_the_scalers(tmp_path: Path) -> None:
    """The scale-out the page shows is the event the scaler logs for three CPU datapoints
    at 86 % (target 70 %) of backend-private-with-alb at 2 tasks, word for word."""
    config = TwinConfig(spec_path=SPEC_PATH, state_dir=tmp_path, network_mode="loopback")
    scaler = Runtime(SPEC, config).autoscaling
    handlers = configure_logging(tmp_path, console=None)
    try:
        for minute in range(3):
            scaler.evaluate(
                scaler.targets["backend-private-with-alb"],
                Datapoint(cpu=86.0, memory=10.0),
                now=60.0 * minute,
            )
    finally:
        remove_handlers(handlers)
    (path,) = event_files(tmp_path)
    (logged,) = parse_events(iter(path.read_text().splitlines()))

    hand = Event(**dashboard_sources.SCALING_EVENT)

    assert dataclasses.replace(logged, time=hand.time) == hand
    assert hand.message.startswith(SCALING_PREFIX)
