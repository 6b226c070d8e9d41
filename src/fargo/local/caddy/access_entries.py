"""Caddy's access-log entries read as ALB's (pure): what the data plane logged, as an
`fargo.local.elb.access_log.AccessLogEntry`.

    entry = from_caddy(json.loads(line), AlbNames(spec), targets={"127.0.1.7:8090": "app"})

The fields Caddy's entry lacks are the ones `fargo.local.caddy.access_log` appends. What
is not exact is listed in `fargo.local.elb.access_log`.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
from typing import Any

from fargo.local.caddy import access_log as caddy_log
from fargo.local.elb.access_log import MAX_USER_AGENT, AccessLogEntry, AlbNames

# Go's crypto/tls cipher suite ids → the OpenSSL names ALB logs.
CIPHERS = {
    0x1301: "TLS_AES_128_GCM_SHA256",
    0x1302: "TLS_AES_256_GCM_SHA384",
    0x1303: "TLS_CHACHA20_POLY1305_SHA256",
    0xC02B: "ECDHE-ECDSA-AES128-GCM-SHA256",
    0xC02F: "ECDHE-RSA-AES128-GCM-SHA256",
    0xC02C: "ECDHE-ECDSA-AES256-GCM-SHA384",
    0xC030: "ECDHE-RSA-AES256-GCM-SHA384",
    0xCCA9: "ECDHE-ECDSA-CHACHA20-POLY1305",
    0xCCA8: "ECDHE-RSA-CHACHA20-POLY1305",
    0xC023: "ECDHE-ECDSA-AES128-SHA256",
    0xC027: "ECDHE-RSA-AES128-SHA256",
    0xC024: "ECDHE-ECDSA-AES256-SHA384",
    0xC028: "ECDHE-RSA-AES256-SHA384",
    0xC009: "ECDHE-ECDSA-AES128-SHA",
    0xC013: "ECDHE-RSA-AES128-SHA",
    0xC00A: "ECDHE-ECDSA-AES256-SHA",
    0xC014: "ECDHE-RSA-AES256-SHA",
    0x009C: "AES128-GCM-SHA256",
    0x009D: "AES256-GCM-SHA384",
    0x003C: "AES128-SHA256",
    0x003D: "AES256-SHA256",
    0x002F: "AES128-SHA",
    0x0035: "AES256-SHA",
}
TLS_VERSIONS = {0x0301: "TLSv1", 0x0302: "TLSv1.1", 0x0303: "TLSv1.2", 0x0304: "TLSv1.3"}


def from_caddy(
    entry: dict[str, Any], names: AlbNames, targets: dict[str, str] | None = None
) -> AccessLogEntry | None:
    """``entry``: one of Caddy's access-log JSON entries; ``targets``: ``ip:port`` → target
    group, for a weighted forward's answer. None when the entry is no listener's.

    Every request the load balancers answer passes here (a thread of the control plane,
    ``bench/access_log_bench.py``): what repeats is looked up once."""
    logger = entry.get("logger")
    server, load_balancer, port = _server(logger if isinstance(logger, str) else "")
    listener = names.listener(load_balancer, port) if load_balancer else None
    if listener is None:
        return None
    request = entry.get("request") or {}
    tls = request.get("tls") or None
    route = entry.get(caddy_log.ROUTE_FIELD)
    priority, action, groups = _route(route if isinstance(route, str) else "")
    target = _target(entry.get(caddy_log.TARGET_FIELD))
    target_status = entry.get(caddy_log.TARGET_STATUS_FIELD)
    if target is None or not isinstance(target_status, int) or target_status <= 0:
        target_status = None
    group = _group(groups, target, targets or {})
    ended = float(entry.get("ts") or 0.0)
    duration = max(0.0, float(entry.get("duration") or 0.0))
    latency = _seconds(entry.get(caddy_log.TARGET_LATENCY_FIELD))
    if action != "forward":
        times = (0.0, 0.0, 0.0)
    elif target_status is None or latency is None:
        times = (-1.0, -1.0, -1.0)  # as ALB: the request got no answer from a target
    else:
        times = (max(0.0, duration - latency), latency, 0.0)
    proto = str(request.get("proto", "HTTP/1.1"))
    kind = "http" if tls is None else ("h2" if proto.startswith("HTTP/2") else "https")
    client = _host_port(str(request.get("remote_ip", "")), str(request.get("remote_port", "")))
    agents = (request.get("headers") or {}).get("User-Agent") or [""]
    user_agent = agents[0] if isinstance(agents, list) and agents else ""
    return AccessLogEntry(
        type=kind,
        time=ended,
        load_balancer=load_balancer,
        elb=names.load_balancer_id(load_balancer),
        client=client,
        target=target,
        request_processing_time=times[0],
        target_processing_time=times[1],
        response_processing_time=times[2],
        elb_status_code=int(entry.get("status") or 0),
        target_status_code=target_status,
        received_bytes=int(entry.get("bytes_read") or 0),
        sent_bytes=int(entry.get("size") or 0),
        request=_request_line(request, listener.port, proto, tls is not None),
        user_agent=str(user_agent)[:MAX_USER_AGENT],
        ssl_cipher=CIPHERS.get(tls.get("cipher_suite", 0)) if tls else None,
        ssl_protocol=TLS_VERSIONS.get(tls.get("version", 0)) if tls else None,
        target_group=group,
        target_group_arn=names.target_group_arn(group) if group else None,
        trace_id=_trace_id(entry) if action == "forward" else None,
        domain_name=(tls.get("server_name") or None) if tls else None,
        chosen_cert_arn=names.certificate_arn(load_balancer) if tls else None,
        matched_rule_priority=priority,
        request_creation_time=ended - duration,
        actions_executed=action,
        conn_trace_id=_connection_id(server, client),
    )


@functools.lru_cache(maxsize=256)
def _server(logger: str) -> tuple[str, str, int]:
    """Caddy's logger ``http.log.access.<load balancer>-<port>`` as the server's name, the
    load balancer and the port; ``("", "", 0)`` for another logger."""
    if not logger.startswith(caddy_log.ACCESS_LOGGER + "."):
        return "", "", 0
    server = logger.removeprefix(caddy_log.ACCESS_LOGGER + ".")
    name, _, port = server.rpartition("-")
    return (server, name, int(port)) if name and port.isdigit() else ("", "", 0)


@functools.lru_cache(maxsize=256)
def _route(value: str) -> tuple[int, str, tuple[str, ...]]:
    """``<priority>|<action>|<target group>,...`` (`fargo.local.caddy.access_log`)."""
    priority, _, rest = (value or "-1|forward|").partition("|")
    action, _, groups = rest.partition("|")
    try:
        number = int(priority)
    except ValueError:
        number = -1
    return number, action or "forward", tuple(g for g in groups.split(",") if g)


def _trace_id(entry: dict[str, Any]) -> str | None:
    """The ``X-Amzn-Trace-Id`` the load balancer forwarded: ``<field>=<id><rest>``."""
    field, trace, rest = (entry.get(key) for key in caddy_log.TRACE_ID_FIELDS)
    if not isinstance(field, str) or not isinstance(trace, str) or not field or not trace:
        return None
    return f"{field}={trace}{rest if isinstance(rest, str) else ''}"


def _target(value: object) -> str | None:
    """``ip:port`` of a target; None for no target or the twin's internal 503 server."""
    if not isinstance(value, str) or not value:
        return None
    return value if _is_host_port(value) else None


@functools.lru_cache(maxsize=1024)
def _is_host_port(value: str) -> bool:
    host, _, port = value.rpartition(":")
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return port.isdigit()


def _group(groups: tuple[str, ...], target: str | None, targets: dict[str, str]) -> str | None:
    if len(groups) == 1:
        return groups[0]
    if target is not None and targets.get(target) in groups:
        return targets[target]
    return None


def _seconds(value: object) -> float | None:
    if isinstance(value, int | float) and value >= 0:
        return float(value)
    return None


def _host_port(host: str, port: str) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _request_line(request: dict[str, Any], port: int, proto: str, tls: bool) -> str:
    host = str(request.get("host", ""))
    host = host[: host.find("]") + 1] if host.startswith("[") else host.partition(":")[0]
    scheme = "https" if tls else "http"
    return f"{request.get('method', '-')} {scheme}://{host}:{port}{request.get('uri', '/')} {proto}"


@functools.lru_cache(maxsize=4096)
def _connection_id(server: str, client: str) -> str:
    """``TID_<32 hex>``: a client's address and port name one connection to a listener."""
    return "TID_" + hashlib.sha256(f"{server} {client}".encode()).hexdigest()[:32]
