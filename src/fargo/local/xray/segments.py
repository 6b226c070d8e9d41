"""X-Ray segment documents, as the daemon receives them (pure).

A datagram is the header line ``{"format": "json", "version": 1}``, a newline, and one
segment document (AWS's "X-Ray segment documents"): ``name``, ``id`` (16 hex),
``trace_id`` (``1-<8 hex>-<24 hex>``), ``start_time`` and ``end_time`` (epoch seconds),
optionally ``parent_id``, ``http``, ``error``/``fault``/``throttle`` and ``subsegments``.
What the twin keeps of it is a `Segment`, with the ``remote`` subsegments (calls to other
services) found at any depth.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

MAX_DATAGRAM_BYTES = 64 * 1024
HEADER = {"format": "json", "version": 1}
TRACE_ID = re.compile(r"^1-[0-9a-f]{8}-[0-9a-f]{24}$")
SEGMENT_ID = re.compile(r"^[0-9a-f]{16}$")


class BadSegment(ValueError):
    """A datagram that is no segment document; the message says what is wrong."""


@dataclass(frozen=True)
class Call:
    """A ``remote`` subsegment: a call the segment's service made."""

    id: str
    name: str  # the host called
    start: float
    end: float
    status: int | None
    url: str | None


@dataclass(frozen=True)
class Segment:
    """One service's part of one request."""

    trace_id: str
    id: str
    name: str
    start: float
    end: float
    parent_id: str | None = None
    method: str | None = None
    url: str | None = None
    status: int | None = None
    origin: str | None = None
    calls: tuple[Call, ...] = field(default=())

    @property
    def duration(self) -> float:
        return self.end - self.start


def parse_datagram(datagram: bytes) -> Segment:
    """The segment a daemon datagram carries; raises `BadSegment`."""
    if len(datagram) > MAX_DATAGRAM_BYTES:
        raise BadSegment(f"a datagram of {len(datagram)} bytes (at most {MAX_DATAGRAM_BYTES})")
    head, newline, body = datagram.partition(b"\n")
    try:
        if not newline or json.loads(head) != HEADER:
            raise BadSegment('no header line {"format": "json", "version": 1}')
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise BadSegment(f"not JSON: {err}") from None
    return segment_from_document(document)


def segment_from_document(document: Any) -> Segment:
    """A `Segment` from a segment document; raises `BadSegment`."""
    if not isinstance(document, dict):
        raise BadSegment("the segment document is not a JSON object")
    if document.get("in_progress"):
        raise BadSegment("an in-progress segment (the twin keeps finished ones)")
    trace_id = _text(document, "trace_id")
    if not TRACE_ID.match(trace_id):
        raise BadSegment(f"trace_id {trace_id!r}: expected 1-<8 hex>-<24 hex>")
    segment_id = _id(document, "id")
    parent = document.get("parent_id")
    if parent is not None and (not isinstance(parent, str) or not SEGMENT_ID.match(parent)):
        raise BadSegment(f"parent_id {parent!r}: expected 16 hex digits")
    start, end = _time(document, "start_time"), _time(document, "end_time")
    if end < start:
        raise BadSegment(f"end_time {end} is before start_time {start}")
    request, status = _http(document)
    calls = [_call(sub) for sub in _remote_subsegments(document)]
    return Segment(
        trace_id=trace_id,
        id=segment_id,
        name=_text(document, "name"),
        start=start,
        end=end,
        parent_id=parent,
        method=_optional_text(request, "method"),
        url=_optional_text(request, "url"),
        status=status,
        origin=_optional_text(document, "origin"),
        calls=tuple(calls),
    )


def _remote_subsegments(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``remote`` subsegments at any depth: a call made inside a handler's own
    (local) subsegment is nested in it."""
    found = []
    pending = [document]
    while pending:
        for sub in pending.pop().get("subsegments") or ():
            if isinstance(sub, dict):
                if sub.get("namespace") == "remote":
                    found.append(sub)
                pending.append(sub)
    return found


def _call(sub: dict[str, Any]) -> Call:
    request, status = _http(sub)
    return Call(
        id=_id(sub, "id"),
        name=_text(sub, "name"),
        start=_time(sub, "start_time"),
        end=_time(sub, "end_time"),
        status=status,
        url=_optional_text(request, "url"),
    )


def _text(document: dict[str, Any], key: str) -> str:
    value = document.get(key)
    if not isinstance(value, str) or not value:
        raise BadSegment(f"{key}: expected a string, found {value!r}")
    return value


def _optional_text(document: dict[str, Any], key: str) -> str | None:
    value = document.get(key)
    return value if isinstance(value, str) else None


def _id(document: dict[str, Any], key: str) -> str:
    value = _text(document, key)
    if not SEGMENT_ID.match(value):
        raise BadSegment(f"{key} {value!r}: expected 16 hex digits")
    return value


def _time(document: dict[str, Any], key: str) -> float:
    value = document.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadSegment(f"{key}: expected epoch seconds, found {value!r}")
    return float(value)


def _http(document: dict[str, Any]) -> tuple[dict[str, Any], int | None]:
    http = document.get("http")
    if not isinstance(http, dict):
        return {}, None
    request = http.get("request") if isinstance(http.get("request"), dict) else {}
    response = http.get("response") if isinstance(http.get("response"), dict) else {}
    status = response.get("status") if isinstance(response, dict) else None
    return request or {}, status if isinstance(status, int) else None
