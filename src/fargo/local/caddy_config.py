"""The spec's load balancers as Caddy JSON: one Caddy server per listener (pure functions).

    config = render(
        spec,
        bind={"public": "127.0.0.1"},
        listener_port=lambda port: port + 8000 if port < 1024 else port,
        routable={"frontend": ["127.0.1.1:80"], "backend-public": []},
        certificate=(Path("certificate.pem"), Path("private-key.pem")),
        tls_server_name="fargo.example.com",
        unavailable_socket=Path(".fargo/caddy/unavailable.sock"),
    )
    # {"apps": {"http": {"servers": {"public-443": ..., "public-80": ...}}, "tls": ...}}

Each server listens only on its load balancer's loopback address and mapped port.
Its routes are the listener rules by priority (conditions rendered through
`fargo.local.routing`, so `decide` and Caddy agree), then the default action.

Which targets get traffic (``routable``) is the caller's decision: healthy ones,
or all when none is (fail open); this module only renders it. A forward to a
target group without routable targets answers 503 as ALB does; in a weighted
forward, such a group keeps its share of requests and answers them with 503
through a tiny internal server on ``unavailable_socket``.

A plain forward to a group listed in ``dynamic`` does not carry the targets in the
config: Caddy looks them up (DNS A records at ``resolver``, every
`TARGET_LOOKUP_REFRESH_SECONDS`), so targets come and go without a config load. An
empty answer falls back to the 503 server. Weighted forwards list their targets.

What a target sees is what ALB sends: the full path and Host unchanged,
``X-Forwarded-For`` appended, ``X-Forwarded-Proto`` and ``X-Forwarded-Port`` (the
spec's listener port, e.g. 443) set, ``X-Amzn-Trace-Id`` added. Caddy's own
``Via`` and ``X-Forwarded-Host`` are removed, ``Server`` says ``awselb/2.0``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from typing import Any

from fargo.local import routing
from fargo.spec.elb import Action, Listener, LoadBalancer, RedirectAction, RuleCondition
from fargo.spec.model import Spec

JSON = dict[str, Any]

SERVER_HEADER = "awselb/2.0"
# ALB gives up connecting to a target after 10 s (answering 504).
TARGET_CONNECT_TIMEOUT_SECONDS = 10
# ELBSecurityPolicy-TLS13-1-2-*: TLS 1.2 with ECDHE and AES-GCM only (the "Res" subset of
# the 2021-06 policy; its CBC suites are left out). Go fixes the TLS 1.3 suites itself
# (AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305), which are the policy's TLS 1.3 suites.
TLS12_CIPHER_SUITES = (
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
)
CERTIFICATE_TAG = "fargo-listener"
# How long Caddy keeps a dynamic target lookup: a target leaves traffic this fast.
TARGET_LOOKUP_REFRESH_SECONDS = 0.1
TARGET_LOOKUP_TIMEOUT_SECONDS = 1
UNAVAILABLE_SERVER = "fargo-unavailable"
# Caddy placeholders the prelude of every server defines (see `_prelude`).
TRACE_FIELD = "fargo.trace_field"
TRACE_ID = "fargo.trace_id"
TRACE_REST = "fargo.trace_rest"
REDIRECT_PATH = "fargo.redirect_path"
REDIRECT_QUERY = "fargo.redirect_query"
UUID_REGEX = "^([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})$"
ALB_PLACEHOLDER = re.compile(r"#\{(protocol|host|port|path|query)\}")


@dataclass(frozen=True)
class DynamicTargets:
    """A target group Caddy looks up: the A records of ``name`` are its targets, on ``port``."""

    name: str
    port: int


def render(
    spec: Spec,
    *,
    bind: Mapping[str, str],
    listener_port: Callable[[int], int],
    routable: Mapping[str, Sequence[str]],
    certificate: tuple[Path, Path] | None,
    tls_server_name: str | None,
    unavailable_socket: Path,
    listener_fds: Mapping[str, int] | None = None,
    dynamic: Mapping[str, DynamicTargets] | None = None,
    resolver: str | None = None,
) -> JSON:
    """Caddy's ``apps`` for every load balancer of ``spec`` (admin and logging are the process's).

    ``bind``: load balancer → loopback address; ``listener_port``: spec port → local
    port; ``routable``: target group → ``ip:port`` of the targets that get new
    requests; ``certificate``: (chain PEM, key PEM) for HTTPS listeners;
    ``tls_server_name``: a name on that certificate, used when a client sends no SNI;
    ``listener_fds``: server name → a listening socket Caddy inherited, used instead
    of binding the address (see `fargo.local.elb` for why); ``dynamic``: groups whose
    targets Caddy looks up at the DNS server ``resolver`` (``udp/127.0.0.1:5353``).
    """
    lookups = dict(dynamic or {}) if resolver else {}
    servers: JSON = {}
    for name, lb in spec.load_balancers.items():
        for listener in lb.listeners:
            server = server_name(name, listener)
            fd = (listener_fds or {}).get(server)
            servers[server] = _server(
                lb,
                listener,
                listen=f"fd/{fd}" if fd is not None else "",
                address=bind[name],
                listener_port=listener_port,
                routable=routable,
                unavailable=unavailable_socket,
                tls_server_name=tls_server_name,
                lookups=lookups,
                resolver=resolver,
            )
    servers[UNAVAILABLE_SERVER] = {
        "listen": [f"unix/{unavailable_socket}"],
        "routes": [{"handle": [_service_unavailable()]}],
        "automatic_https": {"disable": True},
        "protocols": ["h1"],
    }
    apps: JSON = {"http": {"servers": servers}}
    if certificate is not None and _has_https(spec):
        chain, key = certificate
        apps["tls"] = {
            "certificates": {
                "load_files": [
                    {"certificate": str(chain), "key": str(key), "tags": [CERTIFICATE_TAG]}
                ]
            }
        }
    return {"apps": apps}


def server_name(load_balancer: str, listener: Listener) -> str:
    return f"{load_balancer}-{listener.port}"


def listen_address(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def tls_connection_policy(ssl_policy: str | None, server_name: str | None) -> JSON:
    """The Caddy TLS connection policy for an ELB security policy (TLS 1.2 or 1.3 minimum)."""
    policy: JSON = {
        "certificate_selection": {"any_tag": [CERTIFICATE_TAG]},
        "alpn": ["h2", "http/1.1"],
    }
    if ssl_policy is not None and "-1-3-" in ssl_policy:
        policy["protocol_min"] = "tls1.3"
    else:
        policy["protocol_min"] = "tls1.2"
        policy["cipher_suites"] = list(TLS12_CIPHER_SUITES)
    if server_name:
        # Clients that connect by IP send no SNI (or one the certificate lacks).
        policy["default_sni"] = server_name
        policy["fallback_sni"] = server_name
    return policy


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


def matcher_set(conditions: Sequence[RuleCondition]) -> JSON:
    """One Caddy matcher set that holds when every condition holds.

    A matcher set ANDs its matchers but takes one of each kind, and a ``vars_regexp``
    with several keys ORs them; so a second condition of a kind goes one level down,
    into ``not: [{not: [...]}]``, which is its plain truth value.
    """
    return _merge([condition_matcher(c) for c in conditions])


def condition_matcher(condition: RuleCondition) -> JSON:
    """One condition as a single-matcher fragment ``{matcher: config}``."""
    if condition.path_pattern is not None:
        return {
            "path_regexp": {
                "pattern": _anchored(routing.path_pattern_regex(condition.path_pattern))
            }
        }
    if condition.host_header is not None:
        regex = _anchored(routing.host_header_regex(condition.host_header))
        return {"vars_regexp": {"{http.request.host}": {"pattern": regex}}}
    if condition.http_header is not None:
        regex = _anchored(routing.http_header_regex(condition.http_header.values))
        return {"header_regexp": {condition.http_header.name: {"pattern": regex}}}
    if condition.http_request_method is not None:
        return {"method": list(condition.http_request_method)}
    if condition.query_string is not None:
        regex = routing.raw_query_regex(condition.query_string)
        return {"vars_regexp": {"{http.request.uri.query}": {"pattern": regex}}}
    if condition.source_ip is not None:
        return {"remote_ip": {"ranges": list(condition.source_ip)}}
    raise ValueError(f"condition without a field: {condition!r}")


def literal(text: str) -> str:
    """``text`` with Caddy placeholders' braces escaped, so it is sent as written."""
    return text.replace("{", "\\{").replace("}", "\\}")


# -- one listener ---------------------------------------------------------------------------


def _server(
    lb: LoadBalancer,
    listener: Listener,
    *,
    listen: str,
    address: str,
    listener_port: Callable[[int], int],
    routable: Mapping[str, Sequence[str]],
    unavailable: Path,
    tls_server_name: str | None,
    lookups: Mapping[str, DynamicTargets],
    resolver: str | None,
) -> JSON:
    local_port = listener_port(listener.port)

    def handler(action: Action) -> JSON:
        if action.redirect is not None:
            return _redirect(action.redirect, listener, local_port, listener_port)
        if action.fixed_response is not None:
            fixed = action.fixed_response
            return _static(fixed.status_code, fixed.message_body, fixed.content_type)
        return _forward(action, lb, listener, routable, unavailable, lookups, resolver)

    routes: list[JSON] = [{"handle": _prelude(listener)}]
    for rule in listener.rules_by_priority():
        routes.append(
            {
                "match": [matcher_set(rule.conditions)],
                "handle": [handler(rule.action)],
                "terminal": True,
            }
        )
    routes.append({"handle": [handler(listener.default_action)], "terminal": True})
    server: JSON = {
        "listen": [listen or listen_address(address, local_port)],
        "routes": routes,
        "errors": {"routes": [{"handle": [_error_response()]}]},
        "automatic_https": {"disable": True},
        "idle_timeout": f"{lb.idle_timeout}s",
        # Trust every client's X-Forwarded-For so Caddy appends to it, as ALB does.
        "trusted_proxies": {"source": "static", "ranges": ["0.0.0.0/0", "::/0"]},
        "protocols": ["h1"],
    }
    if listener.protocol == "HTTPS":
        server["protocols"] = ["h1", "h2"]
        server["tls_connection_policies"] = [
            tls_connection_policy(listener.ssl_policy, tls_server_name)
        ]
    return server


def _prelude(listener: Listener) -> list[JSON]:
    """Handlers every request passes first: response headers and the placeholders actions use."""
    handlers: list[JSON] = [
        {"handler": "headers", "response": {"set": {"Server": [SERVER_HEADER]}}},
        # Caddy adds "Via: 1.1 Caddy" to proxied responses after its header operations.
        {"handler": "headers", "response": {"delete": ["Via"], "deferred": True}},
    ]
    actions = [listener.default_action, *(rule.action for rule in listener.rules)]
    if any(a.forward is not None for a in actions):
        handlers += [
            # ALB keeps a client's trace (adding a Self field) or starts one with Root.
            {
                "handler": "map",
                "source": "{http.request.header.X-Amzn-Trace-Id}",
                "destinations": ["{" + TRACE_FIELD + "}", "{" + TRACE_REST + "}"],
                "mappings": [
                    {"input_regexp": "^((?:.*;)?\\s*Root=.*)$", "outputs": ["Self", ";${1}"]}
                ],
                "defaults": ["Root", ""],
            },
            # 1-<8 hex>-<24 hex>, from the request's random UUID (see the module notes in elb).
            {
                "handler": "map",
                "source": "{http.request.uuid}",
                "destinations": ["{" + TRACE_ID + "}"],
                "mappings": [{"input_regexp": UUID_REGEX, "outputs": ["1-${1}-${2}${3}${4}${5}"]}],
                "defaults": ["1-00000000-000000000000000000000000"],
            },
        ]
    if any(a.redirect is not None for a in actions):
        handlers += [
            {
                "handler": "map",
                "source": "{http.request.uri}",
                "destinations": ["{" + REDIRECT_PATH + "}"],
                "mappings": [{"input_regexp": "^/([^?]*)", "outputs": ["${1}"]}],
                "defaults": [""],
            },
            {
                "handler": "map",
                "source": "{http.request.uri.query}",
                "destinations": ["{" + REDIRECT_QUERY + "}"],
                "mappings": [{"input_regexp": "^(.+)$", "outputs": ["?${1}"]}],
                "defaults": [""],
            },
        ]
    return handlers


def _forward(
    action: Action,
    lb: LoadBalancer,
    listener: Listener,
    routable: Mapping[str, Sequence[str]],
    unavailable: Path,
    lookups: Mapping[str, DynamicTargets],
    resolver: str | None,
) -> JSON:
    weighted = [w for w in action.weighted_target_groups() if w.weight > 0]
    lookup = lookups.get(weighted[0].target_group) if len(weighted) == 1 else None
    groups = [(w.weight, list(routable.get(w.target_group, ()))) for w in weighted]
    if lookup is None and not any(upstreams for _, upstreams in groups):
        return _service_unavailable()
    proxy: JSON = {
        "handler": "reverse_proxy",
        "transport": {
            "protocol": "http",
            "dial_timeout": f"{TARGET_CONNECT_TIMEOUT_SECONDS}s",
            # A target that sends nothing for the idle timeout gets the client a 504.
            "response_header_timeout": f"{lb.idle_timeout}s",
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
        proxy["upstreams"] = [{"dial": f"unix/{unavailable}"}]
        proxy["load_balancing"] = {"selection_policy": {"policy": "round_robin"}}
    elif len(groups) == 1:
        proxy["upstreams"] = [{"dial": dial} for dial in groups[0][1]]
        proxy["load_balancing"] = {"selection_policy": {"policy": "round_robin"}}
    else:
        upstreams = upstream_weights(groups, f"unix/{unavailable}")
        proxy["upstreams"] = [{"dial": dial} for dial, _ in upstreams]
        proxy["load_balancing"] = {
            "selection_policy": {
                "policy": "weighted_round_robin",
                "weights": [weight for _, weight in upstreams],
            }
        }
    return proxy


def _redirect(
    redirect: RedirectAction,
    listener: Listener,
    local_port: int,
    listener_port: Callable[[int], int],
) -> JSON:
    protocol = listener.protocol if redirect.protocol == "#{protocol}" else redirect.protocol
    if redirect.port.isdigit():
        # The target port is a spec port; on the twin it listens where that port is mapped.
        port = str(listener_port(int(redirect.port)))
    else:
        port = _template(redirect.port, listener, local_port)
    host = _template(redirect.host, listener, local_port)
    path = _template(redirect.path, listener, local_port)
    if redirect.query == "#{query}":
        query = "{" + REDIRECT_QUERY + "}"
    elif redirect.query:
        query = "?" + _template(redirect.query, listener, local_port)
    else:
        query = ""
    location = f"{protocol.lower()}://{host}:{port}{path}{query}"
    status = 301 if redirect.status_code == "HTTP_301" else 302
    return {
        "handler": "static_response",
        "status_code": status,
        "headers": {"Location": [location]},
    }


def _template(text: str, listener: Listener, local_port: int) -> str:
    """An ALB redirect component with ``#{...}`` keywords as Caddy placeholders."""
    values = {
        "protocol": listener.protocol.lower(),
        "host": "{http.request.host}",
        "port": str(local_port),
        "path": "{" + REDIRECT_PATH + "}",
        "query": "{http.request.uri.query}",
    }
    out = []
    position = 0
    for match in ALB_PLACEHOLDER.finditer(text):
        out.append(literal(text[position : match.start()]))
        out.append(values[match.group(1)])
        position = match.end()
    out.append(literal(text[position:]))
    return "".join(out)


def _static(status: int, body: str, content_type: str) -> JSON:
    response: JSON = {
        "handler": "static_response",
        "status_code": status,
        "headers": {"Content-Type": [content_type]},
    }
    if body:
        response["body"] = literal(body)
    return response


def _alb_page(status: str) -> str:
    return (
        f"<html>\r\n<head><title>{status}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status}</h1></center>\r\n</body>\r\n</html>\r\n"
    )


def _service_unavailable() -> JSON:
    """What ALB answers when a target group has no target to send to."""
    return _static(503, _alb_page("503 Service Temporarily Unavailable"), "text/html")


def _error_response() -> JSON:
    """ALB's page for errors Caddy raises: 502 (refused, reset), 504 (timeout), ..."""
    return {
        "handler": "static_response",
        "status_code": "{http.error.status_code}",
        "headers": {"Content-Type": ["text/html"], "Server": [SERVER_HEADER]},
        "body": _alb_page("{http.error.status_code} {http.error.status_text}"),
    }


def _anchored(regex: str) -> str:
    """``(?flags)(?:…)`` → ``(?flags)^(?:…)$``: Caddy searches, `routing` full-matches.

    The `routing` functions return one group after the flags, so anchoring it is safe.
    """
    flags = re.match(r"^\(\?[a-z]+\)", regex)
    prefix = flags.group(0) if flags else ""
    return f"{prefix}^{regex[len(prefix) :]}$"


def _merge(fragments: Sequence[JSON]) -> JSON:
    merged: JSON = {}
    deeper: list[JSON] = []
    for fragment in fragments:
        ((kind, config),) = fragment.items()
        if kind not in merged:
            merged[kind] = config
        elif kind == "header_regexp" and not merged[kind].keys() & config.keys():
            # header_regexp ANDs its fields, so distinct headers share one matcher.
            merged[kind] = {**merged[kind], **config}
        else:
            deeper.append(fragment)
    if deeper:
        merged["not"] = [{"not": [_merge(deeper)]}]
    return merged


def _has_https(spec: Spec) -> bool:
    return any(
        listener.protocol == "HTTPS"
        for lb in spec.load_balancers.values()
        for listener in lb.listeners
    )
