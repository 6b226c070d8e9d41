"""The segments the twin keeps for the run: a bounded store of traces (pure).

    store = TraceStore(max_traces=1000)
    store.add(segment)
    store.trace("1-5759e988-bd862e3fe1be46a994272793")  # its segments, in arrival order

Memory is bounded: at most ``max_traces`` traces (the oldest trace first seen goes when
a new one comes) and ``max_segments_per_trace`` segments in each (later ones dropped).
"""

from __future__ import annotations

from collections import OrderedDict

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
        self.received = 0
        self.dropped = 0  # segments over a trace's bound
        self.rejected = 0  # datagrams that were no segment document

    def add(self, segment: Segment) -> None:
        """Keep ``segment`` (a segment sent again with the same id replaces the first)."""
        self.received += 1
        segments = self._traces.get(segment.trace_id)
        if segments is None:
            segments = self._traces[segment.trace_id] = []
            while len(self._traces) > self.max_traces:
                self._traces.popitem(last=False)
        for index, kept in enumerate(segments):
            if kept.id == segment.id:
                segments[index] = segment
                return
        if len(segments) >= self.max_segments_per_trace:
            self.dropped += 1
            return
        segments.append(segment)

    def trace(self, trace_id: str) -> list[Segment]:
        """The trace's segments; raises LookupError if none is kept."""
        segments = self._traces.get(trace_id)
        if segments is None:
            raise LookupError(f"no trace {trace_id} (the twin keeps the last {self.max_traces})")
        return list(segments)

    def traces(self) -> list[tuple[str, list[Segment]]]:
        """Every kept trace, oldest first."""
        return [(trace_id, list(segments)) for trace_id, segments in self._traces.items()]

    def __len__(self) -> int:
        return len(self._traces)
