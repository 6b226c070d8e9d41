"""An X-Ray segment document from a recording span of `service_kit.otel` (pure).

A span without a local parent is a segment: ``name`` (the service's), ``id``,
``trace_id``, ``parent_id`` (the caller's), ``start_time``/``end_time``, ``origin``; a
span with one is a subsegment inside it (``namespace`` ``remote`` for a client span).
Both get ``http`` from the HTTP attributes, ``error``/``throttle``/``fault`` from the
status code (or ``fault`` from an ``ERROR`` status or an exception), ``cause`` from
recorded exceptions, ``metadata`` from the other attributes and the events, and their
ended children as ``subsegments``. Written by hand: ``json.dumps`` of a dictionary costs
several times more on the hot path.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import SpanKind, StatusCode

from service_kit.xray import ORIGIN

if TYPE_CHECKING:
    from service_kit.otel import XRaySpan

# The HTTP attributes a segment's ``http`` is made of: OpenTelemetry's stable names, and
# the older ones instrumentations still set.
HTTP_KEYS = frozenset(
    (
        "http.request.method",
        "http.method",
        "url.full",
        "http.url",
        "user_agent.original",
        "http.user_agent",
        "http.response.status_code",
        "http.status_code",
    )
)
REMOTE_KINDS = (SpanKind.CLIENT, SpanKind.PRODUCER)
# The documents' fixed parts.
_SEGMENT = '{"name":%s,"id":"%s","trace_id":"%s"%s,"start_time":%.6f,"end_time":%.6f,"origin":"%s"'
_SUBSEGMENT = '{"id":"%s","name":%s,%s"start_time":%.6f,"end_time":%.6f'
_HTTP_REQUEST = ',"http":{"request":{"method":%s,"url":%s}'
_HTTP_REQUEST_UA = ',"http":{"request":{"method":%s,"url":%s,"user_agent":%s}'
_HTTP_RESPONSE = ',"response":{"status":%d}}'
# Attribute values JSON has no type for (bytes, say) are written as their str().
_METADATA = json.JSONEncoder(default=str, separators=(",", ":"))


def document(span: XRaySpan) -> str:
    """``span`` as an X-Ray segment (or subsegment) document, its ended children in."""
    attributes = span.attributes
    if span.segment is span:
        parent = span.parent_id
        text = _SEGMENT % (
            encode_basestring_ascii(span.provider.service_name),
            span.id,
            span.trace_id,
            "" if parent is None else f',"parent_id":"{parent}"',
            span.start_time,
            span.end_time,
            ORIGIN,
        )
    else:
        text = _SUBSEGMENT % (
            span.id,
            encode_basestring_ascii(span.name),
            '"namespace":"remote",' if span.kind in REMOTE_KINDS else "",
            span.start_time,
            span.end_time,
        )
    status: int | None = None
    if attributes:
        get = attributes.get
        method = get("http.request.method") or get("http.method")
        url = get("url.full") or get("http.url")
        user_agent = get("user_agent.original") or get("http.user_agent")
        code = get("http.response.status_code") or get("http.status_code")
        if isinstance(code, int) and not isinstance(code, bool):
            status = code
        if method is not None and url is not None:  # the middleware's and calls' spans
            if user_agent is None:
                text += _HTTP_REQUEST % (_json(method), _json(url))
            else:
                text += _HTTP_REQUEST_UA % (_json(method), _json(url), _json(user_agent))
            text += "}" if status is None else _HTTP_RESPONSE % status
        elif method is not None or url is not None or user_agent is not None:
            request = []
            if method is not None:
                request.append('"method":' + _json(method))
            if url is not None:
                request.append('"url":' + _json(url))
            if user_agent is not None:
                request.append('"user_agent":' + _json(user_agent))
            text += ',"http":{"request":{' + ",".join(request) + "}"
            text += "}" if status is None else _HTTP_RESPONSE % status
        elif status is not None:
            text += ',"http":{' + (_HTTP_RESPONSE % status)[1:]
    if status is not None:
        text += _flags(status)
    elif span.status is StatusCode.ERROR or span.exceptions:
        text += ',"fault":true'
    if span.exceptions:
        text += ',"cause":{"exceptions":' + _METADATA.encode(span.exceptions) + "}"
    if span.events or not attributes.keys() <= HTTP_KEYS:
        text += ',"metadata":' + _METADATA.encode(_metadata(span))
    if span.children:
        done = [document(child) for child in span.children if child.end_time]
        if done:
            text += ',"subsegments":[' + ",".join(done) + "]"
    return text + "}"


def _metadata(span: XRaySpan) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    extra = {k: v for k, v in span.attributes.items() if k not in HTTP_KEYS}
    if extra:
        metadata["default"] = extra
    if span.events:
        metadata["otel"] = {"events": span.events}
    return metadata


def _json(value: object) -> str:
    return encode_basestring_ascii(value if type(value) is str else str(value))


def _flags(status: int) -> str:
    if status >= 500:
        return ',"fault":true'
    if status == 429:
        return ',"error":true,"throttle":true'
    if status >= 400:
        return ',"error":true'
    return ""
