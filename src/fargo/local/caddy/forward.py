"""A ``forward`` action as Caddy's ``reverse_proxy``: which targets, what they see (pure).

    forward(action, lb, listener, routable={"frontend": ["127.0.1.1:80"]},
            unavailable=Path(".fargo/caddy/unavailable.sock"), lookups={}, resolver=None)

Which targets get traffic (``routable``: target group → ``ip:port``) is the caller's
decision. A forward to a target group without routable targets answers 503 as ALB
does; in a weighted forward, such a group keeps its share of requests and answers
them with 503 through the tiny internal server on ``unavailable``.

A forward to a group listed in ``lookups`` does not carry the targets: Caddy looks
them up (DNS A records at ``resolver``, every `TARGET_LOOKUP_REFRESH_SECONDS`), so
targets come and go without a config load (which would close the clients' keep-alive
connections). An empty answer falls back to the 503 server. A weighted forward picks
a group for each request first — by the request's random UUID, whose first three hex
digits (4,096 buckets) are split among the groups by weight, as ALB picks one at random
by weight — and then forwards to that group's targets as a plain forward does, so its
targets are looked up too. Only a group that cannot be looked up (see
`fargo.local.caddy.target_dns.dynamic_targets`) has its targets in the config.

What a target sees is what ALB sends: the full path and Host unchanged,
``X-Forwarded-For`` appended, ``X-Forwarded-Proto`` and ``X-Forwarded-Port`` (the
spec's listener port, e.g. 443) set, ``X-Amzn-Trace-Id`` added. Caddy's own ``Via``
and ``X-Forwarded-Host`` are removed, and no ``Accept-Encoding`` is added. A response
header over ALB's 32 K gets the client a 502.

``X-Amzn-Trace-Id`` has ALB's format, ``Root=1-<8 hex>-<24 hex>`` (``Self=…;`` in front
of a client's own trace), but Caddy has no hex clock, so the 8 hex digits that are
the epoch second at ALB are random here (from the request's UUID, see
`trace_id_handlers`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fargo.local.caddy.responses import service_unavailable
from fargo.spec.elb import Action, Listener, LoadBalancer

JSON = dict[str, Any]

# ALB's limit on a target's whole response header (ELB quotas, "HTTP headers").
MAX_RESPONSE_HEADER_BYTES = 32 * 1024
# ALB gives up connecting to a target after 10 s (answering 504).
TARGET_CONNECT_TIMEOUT_SECONDS = 10
# How long Caddy keeps a dynamic target lookup: a target leaves traffic this fast.
TARGET_LOOKUP_REFRESH_SECONDS = 0.1
TARGET_LOOKUP_TIMEOUT_SECONDS = 1
# Caddy's keep-alive defaults, which a ``keep_alive`` object replaces as a whole.
CADDY_KEEP_ALIVE_PROBE_INTERVAL = "30s"
CADDY_MAX_IDLE_CONNS_PER_HOST = 32
# Caddy placeholders `trace_id_handlers` define.
TRACE_FIELD = "fargo.trace_field"
TRACE_ID = "fargo.trace_id"
TRACE_REST = "fargo.trace_rest"
UUID_REGEX = "^([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})$"


@dataclass(frozen=True)
class DynamicTargets:
    """A target group Caddy looks up: the A records of ``name`` are its targets, on ``port``."""

    name: str
    port: int


def trace_id_handlers() -> list[JSON]:
    """Handlers that define the placeholders of the ``X-Amzn-Trace-Id`` a forward sends."""
    return [
        # ALB keeps a client's trace (adding a Self field) or starts one with Root.
        {
            "handler": "map",
            "source": "{http.request.header.X-Amzn-Trace-Id}",
            "destinations": ["{" + TRACE_FIELD + "}", "{" + TRACE_REST + "}"],
            "mappings": [{"input_regexp": "^((?:.*;)?\\s*Root=.*)$", "outputs": ["Self", ";${1}"]}],
            "defaults": ["Root", ""],
        },
        # 1-<8 hex>-<24 hex>, from the request's random UUID (see the module notes).
        {
            "handler": "map",
            "source": "{http.request.uuid}",
            "destinations": ["{" + TRACE_ID + "}"],
            "mappings": [{"input_regexp": UUID_REGEX, "outputs": ["1-${1}-${2}${3}${4}${5}"]}],
            "defaults": ["1-00000000-000000000000000000000000"],
        },
    ]


# A target that refuses the connection (a task that just died, before its
# deregistration reached Caddy) costs the request a retry on the next target, not a
# 502. Only failed dials are retried: Caddy would also resend a GET whose round trip
# failed, so ``retry_match`` matches nothing — a request already sent is never sent
# twice, and a slow target still answers 504 and a reset one 502, as on ALB.
DIAL_RETRIES: JSON = {
    "retries": 2,
    "try_interval": "20ms",
    "retry_match": [{"expression": "false"}],
}


def target_keep_alive(lb: LoadBalancer) -> JSON:
    """ALB's idle timeout holds on the target side too: an idle connection to a target is
    closed after it. The spec keeps it below the services' keep-alive, so a task never
    closes a connection Caddy is about to reuse (a 502)."""
    return {
        "probe_interval": CADDY_KEEP_ALIVE_PROBE_INTERVAL,
        "max_idle_conns_per_host": CADDY_MAX_IDLE_CONNS_PER_HOST,
        "idle_timeout": f"{lb.idle_timeout}s",
    }


def forward(
    action: Action,
    lb: LoadBalancer,
    listener: Listener,
    routable: Mapping[str, Sequence[str]],
    unavailable: Path,
    lookups: Mapping[str, DynamicTargets],
    resolver: str | None,
) -> JSON:
    """The handler of a forward action: a ``reverse_proxy`` (or ALB's 503 if no target is
    routable), or for a weighted forward a ``subroute`` that picks a group by weight."""
    weighted = [w for w in action.weighted_target_groups() if w.weight > 0]
    if not weighted:
        return service_unavailable()
    groups = [w.target_group for w in weighted]
    if len(groups) == 1:
        return group_forward(groups[0], lb, listener, routable, unavailable, lookups, resolver)
    bounds = bucket_bounds([w.weight for w in weighted])
    routes: list[JSON] = []
    for index, group in enumerate(groups):
        handler = group_forward(group, lb, listener, routable, unavailable, lookups, resolver)
        if handler["handler"] != "reverse_proxy":  # nothing routable: its share gets 503
            handler = _unavailable_proxy(lb, listener, unavailable)
        route: JSON = {"handle": [handler], "terminal": True}
        low, high = bounds[index], bounds[index + 1]
        if low == high:
            continue  # a weight too small for one bucket of 4,096
        if index < len(groups) - 1:  # the last route takes what is left
            pattern = hex_range_pattern(low, high, digits=PICK_DIGITS)
            route["match"] = [{"vars_regexp": {"{http.request.uuid}": {"pattern": pattern}}}]
        routes.append(route)
    return {"handler": "subroute", "routes": routes}


# A weighted forward picks a group by the first hex digits of the request's random UUID.
PICK_DIGITS = 3
PICK_BUCKETS = 16**PICK_DIGITS


def bucket_bounds(weights: Sequence[int], buckets: int = PICK_BUCKETS) -> list[int]:
    """Where each weight's buckets begin, and the end: ``[0, …, buckets]``."""
    total = sum(weights)
    running = 0
    bounds = [0]
    for weight in weights:
        running += weight
        bounds.append(round(running * buckets / total))
    return bounds


def hex_range_pattern(low: int, high: int, *, digits: int) -> str:
    """A regular expression matching a string whose first ``digits`` lowercase hex digits,
    read as a number, are in ``[low, high)``."""
    pieces: list[tuple[str, str, int]] = []  # (stem, last digit, free digits after it)
    while low < high:
        free = 0
        while free < digits and low % 16 ** (free + 1) == 0 and low + 16 ** (free + 1) <= high:
            free += 1
        prefix = f"{low:0{digits}x}"[: digits - free]
        stem, last = (prefix[:-1], prefix[-1]) if prefix else ("", "")
        if pieces and pieces[-1][0] == stem and pieces[-1][2] == free and last:
            pieces[-1] = (stem, pieces[-1][1] + last, free)
        else:
            pieces.append((stem, last, free))
        low += 16**free
    alternatives = [stem + _digit_class(last) + "[0-9a-f]" * free for stem, last, free in pieces]
    return "^(?:" + "|".join(alternatives) + ")"


def _digit_class(digits: str) -> str:
    """``0123456789ab`` → ``[0-9a-b]``: consecutive hex digits as a class (never a range
    across ``9``–``a``, which would take in punctuation and capitals)."""
    if len(digits) <= 1:
        return digits
    numbers = "".join(c for c in digits if c.isdigit())
    letters = "".join(c for c in digits if not c.isdigit())
    spans = [f"{r[0]}-{r[-1]}" if len(r) > 2 else r for r in (numbers, letters) if r]
    return "[" + "".join(spans) + "]"


def group_forward(
    group: str,
    lb: LoadBalancer,
    listener: Listener,
    routable: Mapping[str, Sequence[str]],
    unavailable: Path,
    lookups: Mapping[str, DynamicTargets],
    resolver: str | None,
) -> JSON:
    """The ``reverse_proxy`` to one target group (ALB's 503 if it has no routable target)."""
    lookup = lookups.get(group)
    upstreams = list(routable.get(group, ()))
    if lookup is None and not upstreams:
        return service_unavailable()
    proxy = _proxy(lb, listener)
    if lookup is not None:
        proxy["dynamic_upstreams"] = {
            "source": "a",
            "name": lookup.name,
            "port": str(lookup.port),
            "refresh": f"{round(TARGET_LOOKUP_REFRESH_SECONDS * 1000)}ms",
            "resolver": {"addresses": [resolver]},
            "dial_timeout": f"{TARGET_LOOKUP_TIMEOUT_SECONDS}s",
            "versions": {"ipv4": True},
        }
        # used only when the lookup finds no target: ALB's 503
        upstreams = [f"unix/{unavailable}"]
    proxy["upstreams"] = [{"dial": dial} for dial in upstreams]
    proxy["load_balancing"] = {"selection_policy": {"policy": "round_robin"}, **DIAL_RETRIES}
    return proxy


def _unavailable_proxy(lb: LoadBalancer, listener: Listener, unavailable: Path) -> JSON:
    """A group without targets in a weighted forward: its share of requests gets ALB's 503
    from the internal server, through a proxy like the others (same headers, same path)."""
    proxy = _proxy(lb, listener)
    proxy["upstreams"] = [{"dial": f"unix/{unavailable}"}]
    return proxy


def _proxy(lb: LoadBalancer, listener: Listener) -> JSON:
    """A ``reverse_proxy`` without upstreams: what a target sees, and ALB's timeouts."""
    return {
        "handler": "reverse_proxy",
        "transport": {
            "protocol": "http",
            "dial_timeout": f"{TARGET_CONNECT_TIMEOUT_SECONDS}s",
            # A target that sends nothing for the idle timeout gets the client a 504.
            "response_header_timeout": f"{lb.idle_timeout}s",
            "keep_alive": target_keep_alive(lb),
            # Go's transport would add "Accept-Encoding: gzip" (and unzip the answer);
            # ALB passes the client's header as it is, or none.
            "compression": False,
            # ALB answers 502 when a target's response header is larger.
            "max_response_header_size": MAX_RESPONSE_HEADER_BYTES,
        },
        "headers": {
            "request": {
                "set": {
                    "X-Forwarded-Proto": [listener.protocol.lower()],
                    "X-Forwarded-Port": [str(listener.port)],
                    "X-Amzn-Trace-Id": [
                        "{" + TRACE_FIELD + "}={" + TRACE_ID + "}{" + TRACE_REST + "}"
                    ],
                },
                "delete": ["X-Forwarded-Host", "Via"],
            }
        },
    }
