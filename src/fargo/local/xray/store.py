"""The segments the twin keeps for the run: a bounded store of traces (pure).

    store = TraceStore(max_traces=1000)
    store.add(segment)
    store.trace("1-5759e988-bd862e3fe1be46a994272793")  # its segments, in arrival order
    store.add_entry(load_balancer_entry)                  # from the access-log thread
    store.entries("1-5759e988-bd862e3fe1be46a994272793")  # its load balancers' entries

Memory is bounded: at most ``max_traces`` traces (the oldest trace first seen goes when
a new one comes) and ``max_segments_per_trace`` segments in each (later ones dropped);
as many load balancer entries per trace. Every request through a load balancer has an
entry, sampled or not, and entries come a little after the segments (the access logs
are read every few hundred ms), or before: an entry of a trace with no segment yet
waits among the last ``max_traces`` such traces' entries, and joins its trace when the
trace's first segment comes. The access-log thread adds entries while the event loop
reads: a lock guards the store.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from fargo.local.xray.load_balancer_entries import LoadBalancerEntry
from fargo.local.xray.segments import Segment

MAX_TRACES = 1000
MAX_SEGMENTS_PER_TRACE = 100


class TraceStore:
    def __init__(
        self, max_traces: int = MAX_TRACES, max_segments_per_trace: int = MAX_SEGMENTS_PER_TRACE
    ) -> None:
        self.max_traces = max_traces
        self.max_segments_per_trace = max_segments_per_trace
        self._traces: OrderedDict[str, list[Segment]] = OrderedDict()
        self._entries: dict[str, list[LoadBalancerEntry]] = {}  # of the kept traces
        self._waiting: OrderedDict[str, list[LoadBalancerEntry]] = OrderedDict()
        self._lock = threading.Lock()
        self.received = 0
        self.dropped = 0  # segments over a trace's bound
        self.rejected = 0  # datagrams that were no segment document
        self.entries_received = 0

    def add(self, segment: Segment) -> None:
        """Keep ``segment`` (a segment sent again with the same id replaces the first)."""
        with self._lock:
            self.received += 1
            segments = self._traces.get(segment.trace_id)
            if segments is None:
                segments = self._traces[segment.trace_id] = []
                waiting = self._waiting.pop(segment.trace_id, None)
                if waiting is not None:
                    self._entries[segment.trace_id] = waiting
                while len(self._traces) > self.max_traces:
                    evicted, _ = self._traces.popitem(last=False)
                    self._entries.pop(evicted, None)
            for index, kept in enumerate(segments):
                if kept.id == segment.id:
                    segments[index] = segment
                    return
            if len(segments) >= self.max_segments_per_trace:
                self.dropped += 1
                return
            segments.append(segment)

    def add_entry(self, entry: LoadBalancerEntry) -> None:
        """Keep a load balancer's entry with its trace, or until its trace comes."""
        with self._lock:
            self.entries_received += 1
            entries = self._entries.get(entry.trace_id)
            if entries is None and entry.trace_id in self._traces:
                entries = self._entries[entry.trace_id] = []
            if entries is None:
                entries = self._waiting.get(entry.trace_id)
                if entries is None:
                    entries = self._waiting[entry.trace_id] = []
                    while len(self._waiting) > self.max_traces:
                        self._waiting.popitem(last=False)
            if len(entries) < self.max_segments_per_trace:
                entries.append(entry)

    def trace(self, trace_id: str) -> list[Segment]:
        """The trace's segments; raises LookupError if none is kept."""
        with self._lock:
            segments = self._traces.get(trace_id)
            if segments is None:
                raise LookupError(
                    f"no trace {trace_id} (the twin keeps the last {self.max_traces})"
                )
            return list(segments)

    def entries(self, trace_id: str) -> list[LoadBalancerEntry]:
        """The load balancers' entries of a kept trace (none yet: empty)."""
        with self._lock:
            return list(self._entries.get(trace_id, ()))

    def traces(self) -> list[tuple[str, list[Segment]]]:
        """Every kept trace, oldest first."""
        with self._lock:
            return [(trace_id, list(segments)) for trace_id, segments in self._traces.items()]

    def __len__(self) -> int:
        return len(self._traces)
