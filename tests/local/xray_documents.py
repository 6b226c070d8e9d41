"""X-Ray segment documents as the services send them (`service_kit.xray_document`), for the
tests of the twin's X-Ray daemon, trace store, service map and `fargo traces`.

    segment = document("backend-public", "aaaaaaaaaaaaaaa1", 1.0, 1.1, calls=[call(...)])
    store.add(parse_datagram(datagram(segment)))
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fargo.local.elb.names import lb_dns_name
from fargo.spec import load_spec

SPEC_PATH = Path(__file__).resolve().parents[2] / "fargo.yaml"  # the reference system
SPEC = load_spec(SPEC_PATH)
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
    """A service's segment: the request it answered (``status``), the ``calls`` it made."""
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
    """A call to ``host`` (a load balancer's or a Cloud Map DNS name): a remote subsegment
    named after the host called, as `service_kit.downstream` makes it."""
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


def hop(
    trace: str, caller: str, host: str, callee: str, start: float, end: float, n: int
) -> list[dict[str, Any]]:
    """One request of ``caller`` that calls ``callee`` through ``host`` (a load balancer's or
    a Cloud Map DNS name), from ``start`` to ``end``: the caller's segment with its call, and
    the callee's, nested inside it; ``n`` makes their ids."""
    outer, inner = (end - start) / 15, (end - start) / 5
    return [
        document(
            caller,
            f"{'a' * 15}{n}",
            start,
            end,
            trace=trace,
            calls=[call(f"{'b' * 15}{n}", host, start + outer, end - outer)],
        ),
        document(
            callee,
            f"{'c' * 15}{n}",
            start + inner / 2,
            end - inner / 2,
            parent=f"{'b' * 15}{n}",
            trace=trace,
        ),
    ]


def datagram(doc: dict[str, Any]) -> bytes:
    """``doc`` as the X-Ray SDKs send it to the daemon over UDP."""
    return HEADER + json.dumps(doc).encode()
