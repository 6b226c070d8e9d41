"""ALB access-log entries: read from Caddy's access log, written in ALB's format (pure).

    names = AlbNames(spec)
    entry = from_caddy(json.loads(line), names)   # None: not a load balancer's request
    alb_line(entry)
    # 'https 2026-12-03T06:40:01.123456Z app/fargo-demo-public/3f9c... 127.0.0.1:51234
    #  127.0.1.7:8090 0.000 0.002 0.000 200 200 0 52 "GET https://127.0.0.1:443/api/public
    #  HTTP/1.1" "curl/8.5.0" TLS_AES_128_GCM_SHA256 TLSv1.3 arn:aws:elasticloadbalancing:...
    #  "Root=1-5f1c0a9e-..." "fargo.example.com" "arn:aws:acm:..." 0 2026-12-03T06:40:01.121000Z
    #  "forward" "-" "-" "127.0.1.7:8090" "200" "-" "-" TID_9c0e...'

The fields are ALB's, in the documented order (type, time, elb, client:port,
target:port, request/target/response processing time, elb_status_code,
target_status_code, received_bytes, sent_bytes, "request", "user_agent", ssl_cipher,
ssl_protocol, target_group_arn, "trace_id", "domain_name", "chosen_cert_arn",
matched_rule_priority, request_creation_time, "actions_executed", "redirect_url",
"error_reason", "target:port_list", "target_status_code_list", "classification",
"classification_reason", conn_trace_id), so tools that read ALB logs (Athena's table,
log shippers) read these.

What the twin cannot know exactly: received and sent bytes are the bodies' (Caddy
does not count header bytes); the request processing time is Caddy's own time around
the target's, the response processing time the target's body transfer; the redirect
URL is not logged (``-``); ``conn_trace_id`` is derived from the client's address and
port, which name one connection. Resource ids are stable hashes of the spec's names.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fargo.local.caddy import access_log as caddy_log
from fargo.local.ecs.task import ACCOUNT
from fargo.spec.elb import Listener
from fargo.spec.model import Spec

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
MAX_USER_AGENT = 8192  # ALB logs at most 8 KB of the user agent


@functools.lru_cache(maxsize=1024)
def _resource_id(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:16]


class AlbNames:
    """The spec's load balancers and target groups as ALB names them (ids are stable hashes).

    Every logged request is named: the hashes are cached (`_resource_id`).
    """

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.servers = caddy_log.listener_servers(spec)

    def load_balancer_id(self, name: str) -> str:
        """``app/<name>/<id>``: the ``elb`` field and the CloudWatch LoadBalancer dimension."""
        return f"app/{self.spec.name}-{name}"[:36] + f"/{_resource_id(self.spec.name, name)}"

    def target_group_arn(self, name: str) -> str:
        resource = f"targetgroup/{name[:32]}/{_resource_id(self.spec.name, 'tg', name)}"
        return f"arn:aws:elasticloadbalancing:{self.spec.region}:{ACCOUNT}:{resource}"

    def certificate_arn(self, load_balancer: str) -> str:
        certificate = uuid.UUID(_resource_id(self.spec.name, "cert", load_balancer) * 2)
        return f"arn:aws:acm:{self.spec.region}:{ACCOUNT}:certificate/{certificate}"


@dataclass(frozen=True)
class AccessLogEntry:
    """One request as ALB logs it (`alb_line` writes it), and what the metrics need of it."""

    type: str
    time: datetime
    load_balancer: str  # the spec's name
    elb: str
    client: str
    target: str | None
    request_processing_time: float
    target_processing_time: float
    response_processing_time: float
    elb_status_code: int
    target_status_code: int | None
    received_bytes: int
    sent_bytes: int
    request: str
    user_agent: str
    ssl_cipher: str | None
    ssl_protocol: str | None
    target_group: str | None  # the spec's name
    target_group_arn: str | None
    trace_id: str | None
    domain_name: str | None
    chosen_cert_arn: str | None
    matched_rule_priority: int
    request_creation_time: datetime
    actions_executed: str
    conn_trace_id: str


def from_caddy(
    entry: dict[str, Any], names: AlbNames, targets: dict[str, str] | None = None
) -> AccessLogEntry | None:
    """``entry``: one of Caddy's access-log JSON entries; ``targets``: ``ip:port`` → target
    group, for a weighted forward's answer. None when the entry is no listener's."""
    server = str(entry.get("logger", "")).removeprefix(caddy_log.ACCESS_LOGGER + ".")
    if server not in names.servers:
        return None
    load_balancer, listener = names.servers[server]
    request = entry.get("request") or {}
    tls = request.get("tls") or None
    priority, action, groups = _route(entry.get(caddy_log.ROUTE_FIELD))
    target = _target(entry.get(caddy_log.TARGET_FIELD))
    target_status = entry.get(caddy_log.TARGET_STATUS_FIELD)
    if target is None or not isinstance(target_status, int) or target_status <= 0:
        target_status = None
    group = _group(groups, target, targets or {})
    ended = float(entry.get("ts", 0.0))
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
    trace = _trace_id(entry) if action == "forward" else None
    agents = (request.get("headers") or {}).get("User-Agent") or [""]
    user_agent = agents[0] if isinstance(agents, list) and agents else ""
    return AccessLogEntry(
        type=kind,
        time=datetime.fromtimestamp(ended, UTC),
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
        request=_request_line(request, listener, tls is not None),
        user_agent=str(user_agent)[:MAX_USER_AGENT],
        ssl_cipher=CIPHERS.get(tls.get("cipher_suite", 0)) if tls else None,
        ssl_protocol=TLS_VERSIONS.get(tls.get("version", 0)) if tls else None,
        target_group=group,
        target_group_arn=names.target_group_arn(group) if group else None,
        trace_id=trace,
        domain_name=(tls.get("server_name") or None) if tls else None,
        chosen_cert_arn=names.certificate_arn(load_balancer) if tls else None,
        matched_rule_priority=priority,
        request_creation_time=datetime.fromtimestamp(ended - duration, UTC),
        actions_executed=action,
        conn_trace_id="TID_" + hashlib.sha256(f"{server} {client}".encode()).hexdigest()[:32],
    )


def alb_line(entry: AccessLogEntry) -> str:
    """The entry in ALB's access-log format, one line (no newline)."""
    target_status = _dash(entry.target_status_code)
    fields = [
        entry.type,
        _iso(entry.time),
        entry.elb,
        entry.client,
        _dash(entry.target),
        _processing(entry.request_processing_time),
        _processing(entry.target_processing_time),
        _processing(entry.response_processing_time),
        str(entry.elb_status_code),
        target_status,
        str(entry.received_bytes),
        str(entry.sent_bytes),
        _quoted(entry.request),
        _quoted(entry.user_agent or "-"),
        _dash(entry.ssl_cipher),
        _dash(entry.ssl_protocol),
        _dash(entry.target_group_arn),
        _quoted(_dash(entry.trace_id)),
        _quoted(_dash(entry.domain_name)),
        _quoted(_dash(entry.chosen_cert_arn)),
        str(entry.matched_rule_priority),
        _iso(entry.request_creation_time),
        _quoted(entry.actions_executed),
        _quoted("-"),  # redirect_url
        _quoted("-"),  # error_reason
        _quoted(_dash(entry.target)),
        _quoted(target_status),
        _quoted("-"),  # classification (desync mitigation: not modelled)
        _quoted("-"),  # classification_reason
        entry.conn_trace_id,
    ]
    return " ".join(fields)


def _route(value: object) -> tuple[int, str, list[str]]:
    priority, _, rest = str(value or "-1|forward|").partition("|")
    action, _, groups = rest.partition("|")
    try:
        number = int(priority)
    except ValueError:
        number = -1
    return number, action or "forward", [g for g in groups.split(",") if g]


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


def _group(groups: list[str], target: str | None, targets: dict[str, str]) -> str | None:
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


def _request_line(request: dict[str, Any], listener: Listener, tls: bool) -> str:
    host = str(request.get("host", ""))
    host = host[: host.find("]") + 1] if host.startswith("[") else host.partition(":")[0]
    scheme = "https" if tls else "http"
    uri = str(request.get("uri", "/"))
    method = str(request.get("method", "-"))
    proto = str(request.get("proto", "HTTP/1.1"))
    return f"{method} {scheme}://{host}:{listener.port}{uri} {proto}"


def _quoted(value: str) -> str:
    if value.isprintable() and '"' not in value:
        return f'"{value}"'
    # ALB's readers split on the quotes: a quote or control character in a value is escaped.
    cleaned = "".join(c if c.isprintable() and c != '"' else f"%{ord(c):02X}" for c in value)
    return f'"{cleaned}"'


def _dash(value: object) -> str:
    return "-" if value is None or value == "" else str(value)


def _processing(seconds: float) -> str:
    return "-1" if seconds < 0 else f"{seconds:.3f}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
