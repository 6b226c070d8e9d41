"""ALB access-log entries, written in ALB's format (pure).

    names = AlbNames(spec)
    entry = from_caddy(json.loads(line), names)   # fargo.local.caddy.access_entries
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
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from fargo.local.ecs.task import ACCOUNT
from fargo.spec.elb import Listener
from fargo.spec.model import Spec

MAX_USER_AGENT = 8192  # ALB logs at most 8 KB of the user agent


def _resource_id(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:16]


class AlbNames:
    """The spec's load balancers and target groups as ALB names them (ids are stable hashes).

    Every logged request is named: the names are cached.
    """

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self._listeners: dict[tuple[str, int], Listener | None] = {}

    def listener(self, load_balancer: str, port: int) -> Listener | None:
        """The spec's listener on ``port`` of ``load_balancer``; None when there is none."""
        key = (load_balancer, port)
        if key not in self._listeners:
            lb = self.spec.load_balancers.get(load_balancer)
            listeners = lb.listeners if lb is not None else []
            self._listeners[key] = next((lst for lst in listeners if lst.port == port), None)
        return self._listeners[key]

    def load_balancer_id(self, name: str) -> str:
        """``app/<name>/<id>``: the ``elb`` field and the CloudWatch LoadBalancer dimension."""
        return _load_balancer_id(self.spec.name, name)

    def target_group_arn(self, name: str) -> str:
        return _target_group_arn(self.spec.name, self.spec.region, name)

    def certificate_arn(self, load_balancer: str) -> str:
        return _certificate_arn(self.spec.name, self.spec.region, load_balancer)


@functools.lru_cache(maxsize=256)
def _load_balancer_id(spec: str, name: str) -> str:
    return f"app/{spec}-{name}"[:36] + f"/{_resource_id(spec, name)}"


@functools.lru_cache(maxsize=256)
def _target_group_arn(spec: str, region: str, name: str) -> str:
    resource = f"targetgroup/{name[:32]}/{_resource_id(spec, 'tg', name)}"
    return f"arn:aws:elasticloadbalancing:{region}:{ACCOUNT}:{resource}"


@functools.lru_cache(maxsize=256)
def _certificate_arn(spec: str, region: str, load_balancer: str) -> str:
    certificate = uuid.UUID(_resource_id(spec, "cert", load_balancer) * 2)
    return f"arn:aws:acm:{region}:{ACCOUNT}:certificate/{certificate}"


@dataclass(slots=True)  # not frozen: one per request, and a frozen __init__ costs twice
class AccessLogEntry:
    """One request as ALB logs it (`alb_line` writes it), and what the metrics need of it."""

    type: str
    time: float  # epoch seconds: when the response's last byte was sent
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
    request_creation_time: float  # epoch seconds: when the request's first byte came
    actions_executed: str
    conn_trace_id: str


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


def _iso(epoch: float) -> str:
    """``2026-12-03T06:40:01.123456Z`` (one line per request: the second is formatted once)."""
    second = int(epoch // 1)
    micro = round((epoch - second) * 1e6)
    if micro >= 1_000_000:
        second, micro = second + 1, micro - 1_000_000
    return f"{_iso_second(second)}.{micro:06d}Z"


@functools.lru_cache(maxsize=64)
def _iso_second(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
