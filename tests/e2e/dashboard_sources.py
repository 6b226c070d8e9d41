"""Metrics, traces, a service map and a scaling activity written by hand, in the shapes the
twin serves them (``GET /metrics``: `fargo.local.status.MetricsStatus`; ``GET /traces``,
``/traces/{id}`` and ``/service-map``: `fargo.local.runtime.Runtime` over
`fargo.local.xray.service_graph`; the events: `fargo.local.events.Event`), for the
page's drawing of what a short run of the real twin seldom has: a fault on an edge, a
scale-out, a chart per metric the page plots. `tests/local/test_dashboard_sources.py`
holds these shapes to the twin's own; `test_the_dashboard_in_chromium` draws the twin's
own data."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

NOW = datetime(2026, 12, 3, 7, 0, tzinfo=UTC)
TRACE_ID = "1-6760a1b2-0123456789abcdef01234567"
T0 = NOW.timestamp()


def _stats(requests: int, p50: float, p95: float, faults: int = 0) -> dict[str, Any]:
    return {
        "requests": requests,
        "errors": 0,
        "faults": faults,
        "error_rate": 0.0,
        "fault_rate": round(faults / requests, 4),
        "latency_ms": {"p50": p50, "p95": p95, "p99": p95 + 1},
    }


SERVICE_MAP: dict[str, Any] = {
    "traces": 40,
    "nodes": [
        {"name": "client", "type": "client"},
        {"name": "public", "type": "AWS::ElasticLoadBalancingV2::LoadBalancer", **_stats(40, 3, 9)},
        {"name": "backend-public", "type": "AWS::ECS::Container", **_stats(40, 2.5, 8)},
        {
            "name": "internal",
            "type": "AWS::ElasticLoadBalancingV2::LoadBalancer",
            **_stats(20, 1, 3),
        },
        {
            "name": "private.backend.microservice.local",
            "type": "AWS::ServiceDiscovery::Service",
            **_stats(20, 0.8, 2),
        },
        {"name": "backend-private", "type": "AWS::ECS::Container", **_stats(20, 0.5, 1.5)},
        {"name": "backend-private-with-alb", "type": "AWS::ECS::Container", **_stats(20, 0.5, 1)},
    ],
    "edges": [
        {"source": "client", "target": "public", **_stats(40, 3, 9)},
        {"source": "public", "target": "backend-public", **_stats(40, 2.6, 8.2)},
        {"source": "backend-public", "target": "internal", **_stats(20, 1.1, 3.1)},
        {
            "source": "backend-public",
            "target": "private.backend.microservice.local",
            **_stats(20, 0.9, 2.1, faults=1),
        },
        {
            "source": "private.backend.microservice.local",
            "target": "backend-private",
            **_stats(20, 0.6, 1.6),
        },
        {"source": "internal", "target": "backend-private-with-alb", **_stats(20, 0.6, 1.1)},
    ],
}


# X-Ray's origin of each kind of span (a call, the caller's subsegment, has none).
ORIGIN = {
    "client": "client",
    "load_balancer": "AWS::ElasticLoadBalancingV2::LoadBalancer",
    "service": "AWS::ECS::Container",
    "discovery": "AWS::ServiceDiscovery::Service",
}


def _span(
    span_id: str,
    parent: str | None,
    name: str,
    kind: str,
    start_ms: float,
    end_ms: float,
    own_ms: float | None = None,
) -> dict[str, Any]:
    return {
        "id": span_id,
        "parent_id": parent,
        "name": name,
        "kind": kind,
        "origin": ORIGIN.get(kind),
        "start_time": T0 + start_ms / 1000,
        "end_time": T0 + end_ms / 1000,
        "duration_ms": end_ms - start_ms,
        "own_ms": own_ms,
        "status": 200,
        "url": None,
        "inferred": kind in ("client", "load_balancer", "discovery"),
        "target": None,
        "target_status": None,
    }


SPANS = [
    _span("c0", None, "client", "client", 0, 9),
    _span("a1", "c0", "public", "load_balancer", 0, 9, own_ms=0.0),
    _span("b1", "a1", "backend-public", "service", 1, 8.5),
    _span("c1", "b1", "internal", "call", 2, 8),
    _span("d1", "c1", "internal", "load_balancer", 2.2, 7.8, own_ms=1.6),
    _span("e1", "d1", "backend-private-with-alb", "service", 3, 7),
]
SUMMARY = {
    "trace_id": TRACE_ID,
    "start_time": T0,
    "duration_ms": 9.0,
    "request": "/api/private-with-alb",
    "status": 200,
    "services": ["backend-private-with-alb", "backend-public"],
    "segments": 2,
    "fault": False,
    "error": False,
}
TRACES: dict[str, Any] = {"tracing": "xray", "kept": 40, "traces": [SUMMARY]}


def _metric(
    name: str, statistic: str, unit: str, values: list[float], **dims: str
) -> dict[str, Any]:
    return {
        "namespace": "AWS/ECS" if "Utilization" in name else "AWS/ApplicationELB",
        "metric_name": name,
        "dimensions": dims,
        "statistic": statistic,
        "unit": unit,
        "datapoints": [
            {"timestamp": (NOW + timedelta(seconds=5 * i)).isoformat(), "value": v}
            for i, v in enumerate(values)
        ],
    }


METRICS: dict[str, Any] = {
    "period_seconds": 5,
    "container_insights": True,
    "metrics": [
        _metric(
            "CPUUtilization",
            "Average",
            "Percent",
            [3, 40, 86, 90, 72, 30],
            ClusterName="microservices",
            ServiceName="backend-private-with-alb",
        ),
        _metric(
            "CPUUtilization",
            "Average",
            "Percent",
            [2, 5, 6, 4, 3, 2],
            ClusterName="microservices",
            ServiceName="backend-public",
        ),
        _metric(
            "RequestCount",
            "Sum",
            "Count",
            [0, 120, 300, 310, 200, 20],
            LoadBalancer="public",
            TargetGroup="backend-public",
        ),
        _metric(
            "TargetResponseTime",
            "p95",
            "Seconds",
            [0.002, 0.004, 0.02, 0.03, 0.01, 0.003],
            LoadBalancer="public",
            TargetGroup="backend-public",
        ),
    ],
}


async def metrics(query: Mapping[str, str]) -> dict[str, Any]:
    return METRICS


async def traces(query: Mapping[str, str]) -> dict[str, Any]:
    return TRACES


async def trace(query: Mapping[str, str]) -> dict[str, Any]:
    if query["trace_id"] != TRACE_ID:
        raise LookupError(f"no trace {query['trace_id']}")
    return {**SUMMARY, "spans": SPANS}


async def service_map(query: Mapping[str, str]) -> dict[str, Any]:
    return SERVICE_MAP


# A scaling activity as the scaler logs it (`fargo.local.appautoscaling.scaler`).
SCALING_EVENT = {
    "time": "2026-12-03T07:00:05.000Z",
    "level": "INFO",
    "source": "service",
    "subject": "backend-private-with-alb",
    "message": "Application Auto Scaling: CPUUtilization 86 % > 70 % target for 3 datapoints: "
    "2 → 3 tasks",
}

SOURCES = {"metrics": metrics, "traces": traces, "trace": trace, "service-map": service_map}
