"""What the X-Ray console draws from the segments: a trace's spans, and the service map.

The services send segments (`fargo.local.xray.segments`); the twin's load balancers
(Caddy) and its discovery (DNS) send none. A load balancer's span takes its timing from
its access-log entry (`fargo.local.xray.load_balancer_entries`), as ALB's node in X-Ray:
its times, its own time (request + response processing), the target it chose, the ELB
status code (a 502/503/504 of its own is a fault on its node). The entry of the internal
ALB is the one whose ``Parent`` is the caller's subsegment; the public ALB's, the one of
the trace's first segment. Until the entry comes (the access logs are read a little
later) or without one, a node is inferred from what the services measured, and marked
``inferred``:

- a call to a load balancer's DNS name (a subsegment named after it) becomes that load
  balancer's span, with the subsegment's times; the callee's segment goes under it. Its
  own time, the subsegment's duration minus the callee's segment's, is what the request
  spent in the load balancer and on its two network hops (from the caller's socket to
  the callee's and back);
- a call to a Cloud Map name becomes a span of the discovery service, the same way (its
  own time is the network hop alone: discovery only gave the caller an address);
- a segment with no parent came through the load balancer in front of its service, from
  a client: that load balancer's span covers the segment's times. The time before the
  request reached the task is not measured by anyone, so its own time is shown as 0.

Nodes are named as the spec names them: services, load balancers (``public``), Cloud
Map names (``private.backend.microservice.local``), and ``client``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from fargo.local.elb.names import lb_dns_name
from fargo.local.xray.load_balancer_entries import LoadBalancerEntry
from fargo.local.xray.segments import Call, Segment
from fargo.spec import Spec, service_connect

Kind = Literal["client", "load_balancer", "service", "discovery", "remote", "call"]
ORIGINS: dict[str, str] = {
    "client": "client",
    "load_balancer": "AWS::ElasticLoadBalancingV2::LoadBalancer",
    "service": "AWS::ECS::Container",
    "discovery": "AWS::ServiceDiscovery::Service",
    "remote": "remote",
}
CLIENT = "client"
# Caddy's and the services' clocks are the same, but read at slightly different moments.
CLOCK_SLACK = 0.002


@dataclass(frozen=True)
class Topology:
    """The names the spec gives what a request crosses."""

    load_balancers: dict[str, str]  # DNS name → load balancer
    discovery: dict[str, str]  # Cloud Map (or Service Connect) DNS name → itself
    entry: dict[str, str]  # service → the load balancer in front of it

    @classmethod
    def of(cls, spec: Spec) -> Topology:
        load_balancers = {lb_dns_name(spec, name): name for name in spec.load_balancers}
        discovery: dict[str, str] = {}
        if spec.discovery is not None:
            for service in spec.discovery.services:
                fqdn = spec.discovery.fqdn(service.name)
                discovery[fqdn] = fqdn
        for endpoint in service_connect.endpoints(spec).values():
            discovery[endpoint.dns_name] = endpoint.dns_name
        entry: dict[str, str] = {}
        # An internet-facing load balancer first: where a trace that starts at a service
        # came from, when the service is behind both kinds.
        ordered = sorted(
            spec.load_balancers.items(), key=lambda item: item[1].scheme != "internet-facing"
        )
        for name, lb in ordered:
            for group in lb.forwarded_target_groups():
                for served in spec.services_in(group):
                    entry.setdefault(served, name)
        return cls(load_balancers, discovery, entry)


@dataclass
class Span:
    """One box of a trace's waterfall."""

    id: str
    parent_id: str | None
    name: str
    kind: Kind
    start: float
    end: float
    status: int | None = None
    url: str | None = None
    inferred: bool = False
    own_ms: float | None = None  # time not spent in a child span (load balancers, discovery)
    target: str | None = None  # the target a load balancer chose (from its access log)
    target_status: int | None = None
    children: list[Span] = field(default_factory=list)

    @property
    def duration_ms(self) -> float:
        return (self.end - self.start) * 1000.0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "parent_id": self.parent_id,
            "name": self.name,
            "kind": self.kind,
            "origin": ORIGINS.get(self.kind),
            "start_time": self.start,
            "end_time": self.end,
            "duration_ms": round(self.duration_ms, 3),
            "own_ms": None if self.own_ms is None else round(self.own_ms, 3),
            "status": self.status,
            "url": self.url,
            "inferred": self.inferred,
            "target": self.target,
            "target_status": self.target_status,
        }


def _inferred_id(*parts: str) -> str:
    return hashlib.blake2b("/".join(parts).encode(), digest_size=8).hexdigest()


def _from_entry(span: Span, entry: LoadBalancerEntry) -> None:
    """``span`` (a load balancer's) with the timing its access-log entry measured."""
    span.start, span.end = entry.start, entry.end
    span.status, span.target_status, span.target = entry.status, entry.target_status, entry.target
    span.own_ms = entry.own * 1000.0
    span.inferred = False


def _take(
    entries: list[LoadBalancerEntry],
    load_balancer: str,
    parent_id: str | None,
    near: float,
    within: tuple[float, float] | None = None,
) -> LoadBalancerEntry | None:
    """The entry of ``load_balancer`` with that ``Parent`` closest to ``near`` (and around
    ``within``, the target's segment, when given), removed from ``entries``."""
    found = [
        e
        for e in entries
        if e.load_balancer == load_balancer
        and e.parent_id == parent_id
        and (
            within is None
            or (e.start <= within[0] + CLOCK_SLACK and e.end >= within[1] - CLOCK_SLACK)
        )
    ]
    if not found:
        return None
    best = min(found, key=lambda e: abs(e.start - near))
    entries.remove(best)
    return best


def trace_spans(
    segments: Sequence[Segment], topology: Topology, entries: Sequence[LoadBalancerEntry] = ()
) -> list[Span]:
    """Every span of one trace, parents before children, each level by start time;
    ``entries``: its load balancers' access-log entries (any, in any order)."""
    unmatched = list(entries)
    spans: dict[str, Span] = {}
    calls: dict[str, tuple[Segment, Call]] = {}
    for segment in segments:
        spans[segment.id] = Span(
            segment.id,
            segment.parent_id,
            segment.name,
            "service",
            segment.start,
            segment.end,
            segment.status,
            segment.url,
        )
        for call in segment.calls:
            calls[call.id] = (segment, call)
    callees = {s.parent_id: s for s in segments if s.parent_id is not None}
    # Each call: the caller's subsegment, then (inferred) what it reached by name.
    for call_id, (segment, call) in calls.items():
        target = _call_target(call, topology)
        spans[call_id] = Span(
            call_id, segment.id, call.name, "call", call.start, call.end, call.status, call.url
        )
        if target is None:
            continue
        kind, name = target
        node_id = _inferred_id(call_id, name)
        callee = callees.get(call_id)
        own = call.end - call.start - (callee.duration if callee is not None else 0.0)
        spans[node_id] = Span(
            node_id,
            call_id,
            name,
            kind,
            call.start,
            call.end,
            call.status,
            call.url,
            inferred=True,
            own_ms=max(own, 0.0) * 1000.0,
        )
        if kind == "load_balancer":
            entry = _take(unmatched, name, call_id, call.start)
            if entry is not None:
                _from_entry(spans[node_id], entry)
        if callee is not None:
            spans[callee.id].parent_id = node_id
    # A segment without a parent came from a client, through its load balancer.
    for segment in segments:
        span = spans[segment.id]
        if segment.parent_id is None or segment.parent_id not in spans:
            lb = topology.entry.get(segment.name)
            client_id = _inferred_id(segment.trace_id, CLIENT)
            if client_id not in spans:
                spans[client_id] = Span(
                    client_id, None, CLIENT, "client", segment.start, segment.end, inferred=True
                )
            parent_id = client_id
            if lb is not None:
                lb_id = _inferred_id(segment.id, lb)
                spans[lb_id] = Span(
                    lb_id,
                    client_id,
                    lb,
                    "load_balancer",
                    segment.start,
                    segment.end,
                    segment.status,
                    segment.url,
                    inferred=True,
                    own_ms=0.0,
                )
                times = (segment.start, segment.end)
                entry = _take(unmatched, lb, segment.parent_id, segment.start, times)
                if entry is not None:
                    _from_entry(spans[lb_id], entry)
                parent_id = lb_id
            span.parent_id = parent_id
            _widen(spans[client_id], span, segment.status)
            _widen(spans[client_id], spans[parent_id], segment.status)
    # An entry no segment matched (a retry, a caller whose segment was lost): under the client.
    for entry in unmatched:
        client_id = _inferred_id(entry.trace_id, CLIENT)
        if client_id not in spans:
            spans[client_id] = Span(
                client_id, None, CLIENT, "client", entry.start, entry.end, inferred=True
            )
        lb_id = _inferred_id(entry.trace_id, entry.load_balancer, repr(entry.start))
        spans[lb_id] = Span(lb_id, client_id, entry.load_balancer, "load_balancer", 0.0, 0.0)
        _from_entry(spans[lb_id], entry)
        _widen(spans[client_id], spans[lb_id], entry.status)
    return _ordered(spans)


def _widen(client: Span, span: Span, status: int | None) -> None:
    client.start, client.end = min(client.start, span.start), max(client.end, span.end)
    client.status = client.status or status


def _call_target(call: Call, topology: Topology) -> tuple[Kind, str] | None:
    host = call.name
    if call.url:
        host = urlsplit(call.url).hostname or host
    if host in topology.load_balancers:
        return "load_balancer", topology.load_balancers[host]
    if host in topology.discovery:
        return "discovery", topology.discovery[host]
    return None


def _ordered(spans: dict[str, Span]) -> list[Span]:
    for span in spans.values():
        span.children = []
    roots = []
    for span in spans.values():
        parent = spans.get(span.parent_id) if span.parent_id else None
        if parent is None:
            roots.append(span)
        else:
            parent.children.append(span)
    ordered: list[Span] = []

    def visit(span: Span) -> None:
        ordered.append(span)
        for child in sorted(span.children, key=lambda s: s.start):
            visit(child)

    for root in sorted(roots, key=lambda s: s.start):
        visit(root)
    return ordered


# -- the list of traces ------------------------------------------------------------------


def trace_summary(trace_id: str, spans: Sequence[Span]) -> dict[str, Any]:
    """One line of ``fargo traces``: when, how long, the entry request, its answer."""
    services = [s for s in spans if s.kind == "service"]
    root = spans[0]
    entry = min(services, key=lambda s: s.start) if services else root
    return {
        "trace_id": trace_id,
        "start_time": root.start,
        "duration_ms": round(root.duration_ms, 3),
        "request": _path(entry.url),
        "status": entry.status,
        "services": sorted({s.name for s in services}),
        "segments": len(services),
        "fault": any((s.status or 0) >= 500 for s in services),
        "error": any(400 <= (s.status or 0) < 500 for s in services),
    }


def _path(url: str | None) -> str | None:
    if url is None:
        return None
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


# -- the service map ---------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank ``p`` percentile (0–100) of ``values`` (not empty)."""
    ordered = sorted(values)
    rank = max(math.ceil(p / 100.0 * len(ordered)), 1)
    return ordered[rank - 1]


def _stats(latencies: Sequence[float], statuses: Sequence[int | None]) -> dict[str, Any]:
    count = len(latencies)
    errors = sum(1 for s in statuses if s is not None and 400 <= s < 500)
    faults = sum(1 for s in statuses if s is not None and s >= 500)
    return {
        "requests": count,
        "errors": errors,
        "faults": faults,
        "error_rate": round(errors / count, 4) if count else 0.0,
        "fault_rate": round(faults / count, 4) if count else 0.0,
        "latency_ms": {
            "p50": round(percentile(latencies, 50), 3),
            "p95": round(percentile(latencies, 95), 3),
            "p99": round(percentile(latencies, 99), 3),
        }
        if latencies
        else None,
    }


def service_map(traces: Iterable[Sequence[Span]]) -> dict[str, Any]:
    """Nodes and edges over ``traces`` (each a trace's spans), as X-Ray's service graph:
    an edge is caller → callee, with the callee's answers as the caller saw them."""
    nodes: dict[str, dict[str, Any]] = {}
    node_samples: dict[str, tuple[list[float], list[int | None]]] = {}
    edge_samples: dict[tuple[str, str], tuple[list[float], list[int | None]]] = {}
    trace_count = 0
    for spans in traces:
        trace_count += 1
        by_id = {s.id: s for s in spans}
        for span in spans:
            if span.kind == "call":
                continue
            nodes.setdefault(span.name, {"name": span.name, "type": ORIGINS[span.kind]})
            if span.kind != "client":
                latencies, statuses = node_samples.setdefault(span.name, ([], []))
                latencies.append(span.duration_ms)
                statuses.append(span.status)
            caller = _caller(span, by_id)
            if caller is None:
                continue
            # The latency the caller saw: its call's (a subsegment), else the span's own.
            seen = by_id.get(span.parent_id or "")
            latency = (
                seen.duration_ms if seen is not None and seen.kind == "call" else span.duration_ms
            )
            latencies, statuses = edge_samples.setdefault((caller.name, span.name), ([], []))
            latencies.append(latency)
            statuses.append(span.status)
    return {
        "traces": trace_count,
        "nodes": [
            {**node, **(_stats(*node_samples[name]) if name in node_samples else {})}
            for name, node in sorted(nodes.items())
        ],
        "edges": [
            {"source": source, "target": target, **_stats(*samples)}
            for (source, target), samples in sorted(edge_samples.items())
        ],
    }


def _caller(span: Span, by_id: dict[str, Span]) -> Span | None:
    """The node that called ``span``'s: through a call (subsegment), its segment."""
    parent = by_id.get(span.parent_id or "")
    if parent is not None and parent.kind == "call":
        parent = by_id.get(parent.parent_id or "")
    return parent
