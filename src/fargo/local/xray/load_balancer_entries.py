"""A load balancer's part of a trace, from its access-log entry (pure).

    hop = from_access_log(entry)   # an `fargo.local.elb.access_log.AccessLogEntry`
    hop.trace_id, hop.parent_id    # Root and Parent of the X-Amzn-Trace-Id it forwarded

The twin's load balancers (Caddy) send no segments, but each access-log entry carries
the ``X-Amzn-Trace-Id`` Caddy forwarded (``Root=…`` for a request it started the trace
of, ``Self=…;Root=…;Parent=…;Sampled=…`` for a caller's own trace) and ALB's three
processing times. That is what X-Ray shows of an ALB: when the request came and left,
the load balancer's own time (request + response processing time; all of it when no
target answered), the target it chose and the ELB status code.
"""

from __future__ import annotations

from dataclasses import dataclass

from fargo.local.elb.access_log import AccessLogEntry
from fargo.local.xray.segments import SEGMENT_ID, TRACE_ID


@dataclass(frozen=True)
class LoadBalancerEntry:
    """One request through one load balancer, as a trace needs it."""

    trace_id: str  # Root
    parent_id: str | None  # the caller's subsegment (Parent), None from a client
    load_balancer: str  # the spec's name
    start: float  # epoch seconds: request_creation_time
    end: float  # epoch seconds: time
    own: float  # seconds in the load balancer itself
    target: str | None  # ip:port
    status: int  # elb_status_code
    target_status: int | None

    @property
    def duration(self) -> float:
        return self.end - self.start


def trace_header_fields(header: str) -> dict[str, str]:
    """``Root=1-…;Parent=…;Sampled=1`` as its fields (a part without ``=`` is skipped)."""
    fields: dict[str, str] = {}
    for part in header.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    return fields


def from_access_log(entry: AccessLogEntry) -> LoadBalancerEntry | None:
    """The entry's part of its trace; None without a valid ``Root``."""
    if not entry.trace_id:
        return None
    fields = trace_header_fields(entry.trace_id)
    root = fields.get("Root", "")
    if not TRACE_ID.match(root):
        return None
    parent = fields.get("Parent")
    start = entry.request_creation_time
    end = max(entry.time, start)
    answered = entry.request_processing_time >= 0 and entry.response_processing_time >= 0
    own = (
        entry.request_processing_time + entry.response_processing_time
        if answered
        else end - start  # no target answered (-1): all the time was the load balancer's
    )
    return LoadBalancerEntry(
        trace_id=root,
        parent_id=parent if parent is not None and SEGMENT_ID.match(parent) else None,
        load_balancer=entry.load_balancer,
        start=start,
        end=end,
        own=min(max(own, 0.0), end - start),
        target=entry.target,
        status=entry.elb_status_code,
        target_status=entry.target_status_code,
    )
