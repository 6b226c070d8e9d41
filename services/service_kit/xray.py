"""AWS X-Ray tracing: a segment per request, a subsegment per downstream call.

What the X-Ray SDKs do, cut to what the services need on their hot path:

- the incoming ``X-Amzn-Trace-Id`` (``Root=1-…;Parent=…;Sampled=1``, as ALB or a
  calling service sends it) is continued: same trace id, its ``Parent`` as the segment's
  ``parent_id``, its sampling decision obeyed;
- a request without a decision is sampled by X-Ray's default rule: the first request
  each second (the reservoir), then :data:`DEFAULT_FIXED_RATE` of the rest
  (``XRAY_SAMPLING_RATE`` overrides the rate: ``1`` traces every request);
- a downstream call (`service_kit.downstream`) is a ``remote`` subsegment named after
  the host called (the Cloud Map name, or the internal ALB's), and the callee gets
  ``Root=…;Parent=<subsegment id>;Sampled=…``;
- the finished segment, its subsegments inside, goes to the X-Ray daemon at
  ``AWS_XRAY_DAEMON_ADDRESS`` (``host:port``, or the SDKs' ``tcp:… udp:…`` form) as
  one UDP datagram: the header line ``{"format": "json", "version": 1}`` then the
  segment document. In AWS that is the daemon sidecar; in the twin, the control plane.

Without ``AWS_XRAY_DAEMON_ADDRESS`` nothing is traced and nothing costs anything
(`service_kit.server` does not install the middleware). Health checks (an ``ELB-HealthChecker``
or container health check user agent, no trace header) are not traced, as a sampling rule
excluding them would do in AWS: they would otherwise take the reservoir every second.

The OpenTelemetry SDK with the AWS X-Ray id generator and propagator does the same
with a span processor, an exporter and a collector; it was measured at several times
this module's cost per request (docs/benchmarks.md, "Tracing"), so this module keeps
X-Ray's wire format and OpenTelemetry's vocabulary only.
"""

from __future__ import annotations

import contextvars
import random
import socket
import time
from collections.abc import Mapping
from json.encoder import encode_basestring_ascii
from typing import Any

from service_kit.asgi import TRACE_HEADER, ASGIApp, Message, Receive, Scope, Send
from service_kit.settings import SettingError

DAEMON_ADDRESS_ENV = "AWS_XRAY_DAEMON_ADDRESS"
TRACING_NAME_ENV = "AWS_XRAY_TRACING_NAME"
SAMPLING_RATE_ENV = "XRAY_SAMPLING_RATE"
# X-Ray's default sampling rule: one request a second, then 5 % of the others.
DEFAULT_RESERVOIR_PER_S = 1
DEFAULT_FIXED_RATE = 0.05
HEADER_LINE = b'{"format": "json", "version": 1}\n'
ORIGIN = "AWS::ECS::Container"
# Health checkers' user agents: ALB's, and the twin's container health check (in AWS a
# command in the container, which the task's own sampling rule would leave out).
HEALTH_CHECKERS = (b"ELB-HealthChecker", b"fargo-container-health-check")
USER_AGENT = b"user-agent"
HOST = b"host"

_rand = random.Random()  # noqa: S311 - ids, as the X-Ray SDKs make them, not secrets


def new_trace_id(now: float) -> str:
    """``1-<epoch seconds, 8 hex>-<96 random bits, 24 hex>``."""
    return f"1-{int(now):08x}-{_rand.getrandbits(96):024x}"


def new_id() -> str:
    """A segment or subsegment id: 64 random bits, 16 hex digits."""
    return f"{_rand.getrandbits(64):016x}"


class TraceHeader:
    """A parsed ``X-Amzn-Trace-Id``: ``Root``, ``Parent`` and ``Sampled`` (None: no
    decision yet). Other fields (``Self``, ``Lineage``, …) are ignored."""

    __slots__ = ("parent", "root", "sampled")

    def __init__(self, root: str, parent: str | None = None, sampled: bool | None = None) -> None:
        self.root = root
        self.parent = parent
        self.sampled = sampled

    @classmethod
    def parse(cls, value: str) -> TraceHeader | None:
        """The header's fields; None if it has no ``Root``."""
        if ";" not in value and value.startswith("Root="):  # ALB's, for a new trace
            return cls(value[5:].strip()) if len(value) > 5 else None
        root = parent = None
        sampled: bool | None = None
        for field in value.split(";"):
            key, _, val = field.strip().partition("=")
            if key == "Root":
                root = val
            elif key == "Parent":
                parent = val or None
            elif key == "Sampled":
                sampled = True if val == "1" else False if val == "0" else None
        if not root:
            return None
        return cls(root, parent, sampled)

    def __str__(self) -> str:
        text = f"Root={self.root}"
        if self.parent is not None:
            text += f";Parent={self.parent}"
        if self.sampled is not None:
            text += ";Sampled=" + ("1" if self.sampled else "0")
        return text


class Sampler:
    """X-Ray's default rule, locally: ``reservoir`` requests a second, then ``rate``."""

    __slots__ = ("_second", "_taken", "rate", "reservoir")

    def __init__(self, reservoir: int = DEFAULT_RESERVOIR_PER_S, rate: float = DEFAULT_FIXED_RATE):
        self.reservoir = reservoir
        self.rate = rate
        self._second = 0
        self._taken = 0

    def sample(self, now: float) -> bool:
        """Whether to trace a request arriving at ``now`` (epoch seconds)."""
        second = int(now)
        if second != self._second:
            self._second = second
            self._taken = 0
        if self._taken < self.reservoir:
            self._taken += 1
            return True
        return self.rate >= 1.0 or _rand.random() < self.rate


def _flags(status: int) -> str:
    if status >= 500:
        return ',"fault":true'
    if status == 429:
        return ',"error":true,"throttle":true'
    if status >= 400:
        return ',"error":true'
    return ""


_SUBSEGMENT = (
    '{"id":"%s","name":%s,"namespace":"remote","start_time":%.6f,"end_time":%.6f,'
    '"http":{"request":{"method":"GET","url":%s},"response":{"status":%d}}%s}'
)
_SEGMENT = (
    '{"name":%s,"id":"%s","trace_id":"%s"%s,"start_time":%.6f,"end_time":%.6f,'
    '"origin":"%s","http":{"request":{"method":%s,"url":%s%s},"response":{"status":%d}}%s%s}'
)


class Subsegment:
    """A downstream call: opened by `Segment.call`, closed by `close` with the status."""

    __slots__ = ("end", "id", "name", "start", "status", "url")

    def __init__(self, name: str, url: str) -> None:
        self.id = new_id()
        self.name = name
        self.url = url
        self.start = time.time()
        self.end = 0.0
        self.status = 0

    def close(self, status: int) -> None:
        """The call answered ``status`` (or failed: 502/504) now."""
        self.end = time.time()
        self.status = status

    def document(self) -> str:
        """Its JSON, as a member of the segment's ``subsegments``."""
        return _SUBSEGMENT % (
            self.id,
            encode_basestring_ascii(self.name),
            self.start,
            self.end,
            encode_basestring_ascii(self.url),
            self.status,
            _flags(self.status),
        )


class Segment:
    """One request's trace context. Unsampled segments are only propagated, never sent;
    the id is made when first needed (an unsampled request without downstream calls
    never needs one)."""

    __slots__ = ("_id", "parent", "sampled", "start", "subsegments", "trace_id")

    def __init__(self, trace_id: str, parent: str | None, sampled: bool, start: float) -> None:
        self.trace_id = trace_id
        self.parent = parent  # the caller's (sub)segment id, from the incoming header
        self.sampled = sampled
        self.start = start
        self.subsegments: list[Subsegment] = []
        self._id: str | None = None

    @property
    def id(self) -> str:
        """The segment's id (16 hex digits)."""
        if self._id is None:
            self._id = new_id()
        return self._id

    def call(self, name: str, url: str) -> tuple[Subsegment | None, str]:
        """Open a subsegment for a call to ``name``; returns it (None if unsampled) and the
        ``X-Amzn-Trace-Id`` to send the callee."""
        if not self.sampled:
            return None, f"Root={self.trace_id};Parent={self.id};Sampled=0"
        sub = Subsegment(name, url)
        self.subsegments.append(sub)
        return sub, f"Root={self.trace_id};Parent={sub.id};Sampled=1"

    def document(
        self,
        name: str,
        *,
        end: float,
        method: str,
        url: str,
        status: int,
        user_agent: str | None = None,
    ) -> bytes:
        """The datagram for the daemon: header line, then this segment's JSON."""
        parent = self.parent
        subsegments = ""
        if self.subsegments:
            done = [s.document() for s in self.subsegments if s.end]
            if done:
                subsegments = ',"subsegments":[' + ",".join(done) + "]"
        body = _SEGMENT % (
            encode_basestring_ascii(name),
            self.id,
            self.trace_id,
            "" if parent is None else f',"parent_id":"{parent}"',
            self.start,
            end,
            ORIGIN,
            encode_basestring_ascii(method),
            encode_basestring_ascii(url),
            "" if user_agent is None else ',"user_agent":' + encode_basestring_ascii(user_agent),
            status,
            _flags(status),
            subsegments,
        )
        return HEADER_LINE + body.encode()


# The request's segment, for `service_kit.downstream` (each request runs in its own
# asyncio task, so in its own copy of the context).
current_segment: contextvars.ContextVar[Segment | None] = contextvars.ContextVar(
    "xray_segment", default=None
)


def daemon_address(value: str) -> tuple[str, int]:
    """``AWS_XRAY_DAEMON_ADDRESS``: ``host:port``, or ``tcp:host:port udp:host:port``."""
    expected = (
        f"{DAEMON_ADDRESS_ENV}={value!r}: expected host:port (e.g. 127.0.0.1:2000) "
        "or 'tcp:host:port udp:host:port'"
    )
    address = value.strip()
    for part in address.split():
        if part.startswith("udp:"):
            address = part[4:]
            break
    else:
        if " " in address or address.startswith("tcp:"):
            raise SettingError(expected)
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SettingError(expected)
    return host.strip("[]"), int(port)


class Emitter:
    """Sends segment datagrams to the daemon; a full buffer or an absent daemon drops them
    (tracing must never fail or slow a request)."""

    def __init__(self, address: tuple[str, int]) -> None:
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_DGRAM)
        self._socket.setblocking(False)
        self.address = address
        self.sent = 0
        self.dropped = 0

    def send(self, datagram: bytes) -> None:
        try:
            self._socket.sendto(datagram, self.address)
            self.sent += 1
        except OSError:
            self.dropped += 1

    def close(self) -> None:
        self._socket.close()


class Recorder:
    """What the middleware needs: the service's name, the sampler and the emitter."""

    def __init__(self, name: str, sampler: Sampler, emitter: Emitter) -> None:
        self.name = name
        self.sampler = sampler
        self.emitter = emitter

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Recorder | None:
        """None without ``AWS_XRAY_DAEMON_ADDRESS`` (raises `SettingError` for bad values)."""
        raw = environ.get(DAEMON_ADDRESS_ENV, "").strip()
        if not raw:
            return None
        address = daemon_address(raw)
        name = environ.get(TRACING_NAME_ENV, "").strip() or "service"
        rate_raw = environ.get(SAMPLING_RATE_ENV, "").strip()
        rate = DEFAULT_FIXED_RATE
        if rate_raw:
            try:
                rate = float(rate_raw)
            except ValueError:
                rate = -1.0
            if not 0.0 <= rate <= 1.0:
                raise SettingError(
                    f"{SAMPLING_RATE_ENV}={rate_raw!r}: expected a fraction from 0 to 1 "
                    "(0.05 is X-Ray's default rule)"
                )
        return cls(name, Sampler(rate=rate), Emitter(address))


class XRayMiddleware:
    """ASGI middleware: a segment per HTTP request (see the module docstring)."""

    def __init__(self, app: ASGIApp, recorder: Recorder) -> None:
        self.app = app
        self.recorder = recorder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = user_agent = host = None
        for key, value in scope["headers"]:
            if key == TRACE_HEADER:
                header = value
            elif key == USER_AGENT:
                user_agent = value
            elif key == HOST:
                host = value
        now = time.time()
        incoming = None if header is None else TraceHeader.parse(header.decode("latin-1"))
        sampled: bool | None
        if incoming is None:
            if user_agent is not None and user_agent.startswith(HEALTH_CHECKERS):
                await self.app(scope, receive, send)
                return
            trace_id, parent, sampled = new_trace_id(now), None, self.recorder.sampler.sample(now)
        else:
            trace_id, parent = incoming.root, incoming.parent
            sampled = incoming.sampled
            if sampled is None:
                sampled = self.recorder.sampler.sample(now)
        segment = Segment(trace_id, parent, bool(sampled), now)
        current_segment.set(segment)
        if not sampled:
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            url = f"http://{(host or b'').decode('latin-1')}{scope['path']}"
            self.recorder.emitter.send(
                segment.document(
                    self.recorder.name,
                    end=time.time(),
                    method=scope["method"],
                    url=url,
                    status=status,
                    user_agent=None if user_agent is None else user_agent.decode("latin-1"),
                )
            )


def parse_datagram(datagram: bytes) -> dict[str, Any]:
    """A daemon datagram's segment document (for tests and tools): raises ValueError."""
    import json

    head, newline, body = datagram.partition(b"\n")
    if not newline or json.loads(head) != {"format": "json", "version": 1}:
        raise ValueError("not an X-Ray daemon datagram (no format header line)")
    document = json.loads(body)
    if not isinstance(document, dict):
        raise ValueError("the segment document is not a JSON object")
    return document
