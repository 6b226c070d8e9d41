"""A ``forward`` action as Caddy's ``reverse_proxy``: which targets, what they see (pure).

    forward(action, lb, listener, routable={"frontend": ["127.0.1.1:80"]},
            unavailable=Path(".fargo/caddy/unavailable.sock"), lookups={}, resolver=None)

Which targets get traffic (``routable``: target group → ``ip:port``) is the caller's
decision. A forward to a target group without routable targets answers 503 as ALB
does; in a weighted forward, such a group keeps its share of requests and answers
them with 503 through the tiny internal server on ``unavailable``.

A plain forward to a group listed in ``lookups`` does not carry the targets: Caddy
looks them up (DNS A records at ``resolver``, every `TARGET_LOOKUP_REFRESH_SECONDS`),
so targets come and go without a config load. An empty answer falls back to the
503 server. Weighted forwards list their targets.

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

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import reduce
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
    """The ``reverse_proxy`` handler of a forward action (or ALB's 503 if no target is routable)."""
    weighted = [w for w in action.weighted_target_groups() if w.weight > 0]
    lookup = lookups.get(weighted[0].target_group) if len(weighted) == 1 else None
    groups = [(w.weight, list(routable.get(w.target_group, ()))) for w in weighted]
    if lookup is None and not any(upstreams for _, upstreams in groups):
        return service_unavailable()
    proxy: JSON = {
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
    weights: list[int] | None = None
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
        dials = [f"unix/{unavailable}"]
    elif len(groups) == 1:
        dials = groups[0][1]
    else:
        upstreams = upstream_weights(groups, f"unix/{unavailable}")
        dials = [dial for dial, _ in upstreams]
        weights = [weight for _, weight in upstreams]
    proxy["upstreams"] = [{"dial": dial} for dial in dials]
    policy: JSON = {"policy": "round_robin"}
    if weights is not None:
        policy = {"policy": "weighted_round_robin", "weights": weights}
    proxy["load_balancing"] = {"selection_policy": policy, **DIAL_RETRIES}
    return proxy


def upstream_weights(
    groups: Sequence[tuple[int, Sequence[str]]], empty: str
) -> list[tuple[str, int]]:
    """Per-upstream weights that give each (weight, upstreams) group its share of requests.

    Within a group, requests are spread evenly; a group with no upstreams sends its
    share to ``empty``. Weights are integers for Caddy's ``weighted_round_robin``.
    """
    sizes = [max(len(upstreams), 1) for weight, upstreams in groups if weight > 0]
    common = reduce(math.lcm, sizes, 1)
    weights: dict[str, int] = {}
    for weight, upstreams in groups:
        if weight <= 0:
            continue
        for dial in upstreams or [empty]:
            weights[dial] = weights.get(dial, 0) + weight * common // max(len(upstreams), 1)
    divisor = reduce(math.gcd, weights.values(), 0) or 1
    return [(dial, w // divisor) for dial, w in weights.items()]
