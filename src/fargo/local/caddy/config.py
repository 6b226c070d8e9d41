"""The spec's load balancers as Caddy JSON: one Caddy server per listener (pure functions).

    config = render(
        spec,
        bind={"public": "127.0.0.1"},
        listener_port=lambda lb, port: port + 8000 if port < 1024 else port,
        routable={"frontend": ["127.0.1.1:80"], "backend-public": []},
        certificate=(Path("certificate.pem"), Path("private-key.pem")),
        tls_server_name="fargo.example.com",
        unavailable_socket=Path(".fargo/caddy/unavailable.sock"),
    )
    # {"apps": {"http": {"servers": {"public-443": ..., "public-80": ...}}, "tls": ...}}

Each server listens only on its load balancer's loopback address and mapped port.
Its routes are the listener rules by priority (conditions rendered by
`fargo.local.caddy.conditions` through `fargo.spec.routing`, so `decide` and Caddy
agree), then the default action. The actions are rendered by
`fargo.local.caddy.forward` (forward) and `fargo.local.caddy.responses` (redirect,
fixed-response), TLS by `fargo.local.caddy.tls`. Before the rules, ALB's edge:
size limits answered 400, ``Upgrade: h2c`` dropped, Host for HTTP/1.0
(`fargo.local.caddy.edge`). Responses say ``Server: awselb/2.0``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fargo.local.caddy import access_log
from fargo.local.caddy.conditions import matcher_set
from fargo.local.caddy.edge import MAX_HEADER_BYTES, edge_routes
from fargo.local.caddy.forward import (
    DynamicTargets,
    forward,
    trace_id_handlers,
)
from fargo.local.caddy.responses import (
    SERVER_HEADER,
    error_routes,
    fixed_response,
    redirect,
    redirect_handlers,
    service_unavailable,
)
from fargo.local.caddy.tls import certificates, https_load_balancers, tls_connection_policy
from fargo.local.ec2.hostport import host_port
from fargo.local.ec2.network import ListenerPort
from fargo.local.elb.names import lb_dns_name
from fargo.spec.elb import Action, Listener, LoadBalancer
from fargo.spec.model import Spec

JSON = dict[str, Any]

UNAVAILABLE_SERVER = "fargo-unavailable"

# ALB changes rules without closing a connection. Caddy loads a config by stopping the
# old config's servers, and Go's `Shutdown` closes their idle keep-alive connections: a
# request sent on one at that instant is lost. So a listener the next config no longer
# uses keeps serving this long first, and each answer it gives meanwhile closes its
# connection (`close_when_shutting_down`; HTTP/2 sends GOAWAY): a client sending at
# least twice a second moves to the new servers without a failed request.
SHUTDOWN_DELAY = "500ms"


def close_when_shutting_down() -> JSON:
    """A route every request passes: while its server's config is being replaced, every answer
    closes its connection (HTTP/1.1 ``Connection: close``; Go's HTTP/2 sends GOAWAY)."""
    return {
        "match": [{"vars": {"{http.shutting_down}": ["true"]}}],
        "handle": [{"handler": "headers", "response": {"set": {"Connection": ["close"]}}}],
    }


def render(
    spec: Spec,
    *,
    bind: Mapping[str, str],
    listener_port: ListenerPort,
    routable: Mapping[str, Sequence[str]],
    certificate: tuple[Path, Path] | None,
    tls_server_name: str | None,
    unavailable_socket: Path,
    listener_fds: Mapping[str, Sequence[int]] | None = None,
    dynamic: Mapping[str, DynamicTargets] | None = None,
    resolver: str | None = None,
    access_logs: Path | None = None,
) -> JSON:
    """Caddy's ``apps`` for every load balancer of ``spec`` (admin and Caddy's own log are the
    process's), and with ``access_logs`` (a folder) the access logs' ``logging``.

    ``bind``: load balancer → loopback address; ``listener_port``: (load balancer, spec
    port) → the port it is served on; ``routable``: target group → ``ip:port`` of the
    targets that get new requests; ``certificate``: (chain PEM, key PEM) for HTTPS listeners;
    ``tls_server_name``: a name on that certificate, used when a client sends no SNI;
    ``listener_fds``: server name → listening sockets Caddy inherited, used instead
    of binding the address (see `fargo.local.caddy.listeners` for why); ``dynamic``:
    groups whose targets Caddy looks up at the DNS server ``resolver``
    (``udp/127.0.0.1:5353``); ``access_logs``: where each load balancer's access log
    goes (`fargo.local.caddy.access_log`).
    """
    lookups = dict(dynamic or {}) if resolver else {}
    servers: JSON = {}
    for name, lb in spec.load_balancers.items():
        for listener in lb.listeners:
            server = server_name(name, listener)
            fds = (listener_fds or {}).get(server, ())
            servers[server] = _server(
                lb,
                listener,
                listen=[f"fd/{fd}" for fd in fds],
                address=bind[name],
                listener_port=functools.partial(listener_port, name),
                routable=routable,
                unavailable=unavailable_socket,
                tls_server_name=tls_server_name,
                lookups=lookups,
                resolver=resolver,
                dns_name=lb_dns_name(spec, name),
                access_logged=access_logs is not None,
            )
            if access_logs is not None:
                servers[server]["logs"] = access_log.server_logs(server)
    servers[UNAVAILABLE_SERVER] = {
        "listen": [f"unix/{unavailable_socket}"],
        "routes": [{"handle": [service_unavailable()]}],
        "automatic_https": {"disable": True},
        "protocols": ["h1"],
    }
    apps: JSON = {"http": {"servers": servers, "shutdown_delay": SHUTDOWN_DELAY}}
    if certificate is not None and https_load_balancers(spec):
        apps["tls"] = certificates(*certificate)
    if access_logs is None:
        return {"apps": apps}
    return {"apps": apps, "logging": access_log.access_logging(spec, directory=access_logs)}


def server_name(load_balancer: str, listener: Listener) -> str:
    return f"{load_balancer}-{listener.port}"


def _server(
    lb: LoadBalancer,
    listener: Listener,
    *,
    listen: Sequence[str],
    address: str,
    listener_port: Callable[[int], int],
    routable: Mapping[str, Sequence[str]],
    unavailable: Path,
    tls_server_name: str | None,
    lookups: Mapping[str, DynamicTargets],
    resolver: str | None,
    dns_name: str,
    access_logged: bool = False,
) -> JSON:
    local_port = listener_port(listener.port)

    def handler(action: Action) -> JSON:
        if action.redirect is not None:
            return redirect(action.redirect, listener, local_port, listener_port)
        if action.fixed_response is not None:
            return fixed_response(action.fixed_response)
        return forward(action, lb, listener, routable, unavailable, lookups, resolver)

    def logged(priority: int, action: Action) -> list[JSON]:
        if not access_logged:
            return [handler(action)]
        return [access_log.route_field(priority, action), handler(action)]

    prelude = _prelude(listener, dns_name)
    if access_logged:
        # First: they add their fields once everything after them answered (the edge too).
        prelude = [*access_log.entry_fields(forwarding=_forwards(listener)), *prelude]
    routes: list[JSON] = [{"handle": prelude}]
    for rule in listener.rules_by_priority():
        routes.append(
            {
                "match": [matcher_set(rule.conditions)],
                "handle": logged(rule.priority, rule.action),
                "terminal": True,
            }
        )
    routes.append({"handle": logged(0, listener.default_action), "terminal": True})
    server: JSON = {
        "listen": list(listen) or [host_port(address, local_port)],
        "routes": routes,
        "errors": {"routes": error_routes(unavailable)},
        "automatic_https": {"disable": True},
        "idle_timeout": f"{lb.idle_timeout}s",
        "max_header_bytes": MAX_HEADER_BYTES,
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


def _tested_headers(listener: Listener) -> list[str]:
    """The header names the listener's rules test (``http-header`` conditions)."""
    return [
        condition.http_header.name
        for rule in listener.rules
        for condition in rule.conditions
        if condition.http_header is not None
    ]


def _prelude(listener: Listener, dns_name: str) -> list[JSON]:
    """Handlers every request passes first: response headers, the placeholders actions use,
    then ALB's edge (`fargo.local.caddy.edge`) and `close_when_shutting_down`."""
    handlers: list[JSON] = [
        {"handler": "headers", "response": {"set": {"Server": [SERVER_HEADER]}}},
        # Caddy adds "Via: 1.1 Caddy" to proxied responses after its header operations.
        {"handler": "headers", "response": {"delete": ["Via"], "deferred": True}},
    ]
    actions = [listener.default_action, *(rule.action for rule in listener.rules)]
    if any(a.forward is not None for a in actions):
        handlers += trace_id_handlers()
    if any(a.redirect is not None for a in actions):
        handlers += redirect_handlers()
    edge = edge_routes(dns_name=dns_name, header_names=_tested_headers(listener))
    handlers.append({"handler": "subroute", "routes": [close_when_shutting_down(), *edge]})
    return handlers


def _forwards(listener: Listener) -> bool:
    actions = [listener.default_action, *(rule.action for rule in listener.rules)]
    return any(a.forward is not None for a in actions)
