"""What ALB does to a request before its rules see it, as Caddy routes (pure functions).

    server["max_header_bytes"] = MAX_HEADER_BYTES
    edge = edge_routes(dns_name="fargo-demo-public.us-east-1.elb.fargo.internal",
                       header_names=["X-Tenant"])      # the headers the rules test
    prelude.append({"handler": "subroute", "routes": edge})   # before the rules' routes

ALB answers 400 when the request line is longer than 16 K, a single header longer than
16 K, or the whole header longer than 64 K (ELB's "HTTP 400: Bad request"). Here:

- the request line: a CEL ``expression`` over its parts, answered with ALB's 400 page;
- a single header: Caddy cannot walk every header of a request, so the check covers the
  headers that grow in practice (`LARGE_HEADERS`: cookies, tokens, trace context …) and
  every header a listener rule of the listener tests; another header may grow up to the
  whole-header limit, and a header sent several times counts as one (Caddy joins them);
- the whole header: Caddy's ``max_header_bytes``; Go's server answers a longer one with
  ``431 Request Header Fields Too Large`` itself (it adds 4 KiB of slack, taken off here),
  before any route runs.

Two rewrites, as ALB makes them:

- an ``Upgrade: h2c`` (HTTP/2 over cleartext) is not passed on: the target gets the
  request as HTTP/1.1 (``HTTP2-Settings`` goes too); a WebSocket ``Upgrade`` still passes;
- an HTTP/1.0 request without ``Host`` gets the load balancer's DNS name as its Host
  (Caddy would send the target's address), before the rules match.

A host name with a trailing dot (``example.com.``) matches host-header rules like the
name without it (`fargo.local.caddy.conditions`, `fargo.spec.routing.host_name`).
Obs-fold headers (a line starting with a space continuing the previous one) cannot be
refused in Caddy: Go's parser unfolds them into one line joined by a space, which RFC
9112 §5.2 allows a proxy to do instead of answering 400 (docs/twin.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from fargo.local.caddy.responses import bad_request

JSON = dict[str, Any]

# ALB's limits on a request's header (ELB, "HTTP 400: Bad request").
MAX_REQUEST_LINE_BYTES = 16 * 1024
MAX_SINGLE_HEADER_BYTES = 16 * 1024
MAX_WHOLE_HEADER_BYTES = 64 * 1024
# Go's http.Server reads this much past MaxHeaderBytes before it answers 431.
GO_HEADER_SLACK_BYTES = 4096
MAX_HEADER_BYTES = MAX_WHOLE_HEADER_BYTES - GO_HEADER_SLACK_BYTES
# Headers that grow large in practice, checked against the single-header limit.
LARGE_HEADERS = (
    "Cookie",
    "Authorization",
    "Proxy-Authorization",
    "Referer",
    "User-Agent",
    "Accept",
    "Accept-Language",
    "Content-Type",
    "Origin",
    "If-Match",
    "If-None-Match",
    "Forwarded",
    "X-Forwarded-For",
    "X-Amzn-Trace-Id",
    "Traceparent",
    "Tracestate",
    "Baggage",
    "X-Amzn-Oidc-Data",
    "X-Amzn-Oidc-Accesstoken",
)
# What Caddy's CEL matcher takes for a placeholder's name after ``http.request.header.``.
CEL_PLACEHOLDER_NAME = re.compile(r"[\w.-]+", re.ASCII)
# An Upgrade header that offers h2c among its protocols.
H2C_UPGRADE = r"(?i)(?:^|[\s,])h2c(?:$|[\s,])"


def edge_routes(*, dns_name: str, header_names: Iterable[str] = ()) -> list[JSON]:
    """The routes a listener's requests take before its rules (after the response headers).

    ``dns_name``: the load balancer's DNS name; ``header_names``: headers its rules test,
    checked against the single-header limit besides `LARGE_HEADERS`.
    """
    return [
        {
            "match": [{"expression": too_large_expression(header_names)}],
            "handle": [bad_request()],
            "terminal": True,
        },
        {
            "match": [{"vars": {"{http.request.host}": [""]}}],
            "handle": [{"handler": "headers", "request": {"set": {"Host": [dns_name]}}}],
        },
        {
            "match": [{"header_regexp": {"Upgrade": {"pattern": H2C_UPGRADE}}}],
            "handle": [
                {"handler": "headers", "request": {"delete": ["Upgrade", "HTTP2-Settings"]}}
            ],
        },
    ]


def too_large_expression(header_names: Iterable[str] = ()) -> str:
    """CEL: the request line, or one of the checked headers, is over ALB's limit."""
    # "GET /path HTTP/1.1": two spaces between the three parts.
    request_line = (
        "size({http.request.method}) + size({http.request.orig_uri}) + "
        f"size({{http.request.proto}}) + 2 > {MAX_REQUEST_LINE_BYTES}"
    )
    checks = [request_line]
    names: dict[str, str] = {}
    for name in (*LARGE_HEADERS, *header_names):
        names.setdefault(name.lower(), name)
    for name in names.values():
        if not CEL_PLACEHOLDER_NAME.fullmatch(name):
            continue  # a legal but unusual header name a CEL placeholder cannot hold
        # "Name: value"; repeated fields count together (Caddy joins them with commas).
        limit = MAX_SINGLE_HEADER_BYTES - len(name) - 2
        checks.append(f"size({{http.request.header.{name}}}) > {limit}")
    return " || ".join(checks)
