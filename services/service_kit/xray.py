"""AWS X-Ray's side of tracing: its ids, trace header, sampling rule and daemon.

What the X-Ray SDKs do, cut to what the services need on their hot path; the spans
themselves are OpenTelemetry's (`service_kit.otel`), propagated by
`service_kit.xray_propagator` and opened per request by `service_kit.xray_middleware`:

- the incoming ``X-Amzn-Trace-Id`` (``Root=1-…;Parent=…;Sampled=1``, as ALB or a
  calling service sends it) is a `TraceHeader`: same trace id, its ``Parent`` as the
  segment's ``parent_id``, its sampling decision obeyed;
- a request without a decision is sampled by X-Ray's default rule (`Sampler`): the first
  request each second (the reservoir), then :data:`DEFAULT_FIXED_RATE` of the rest
  (``XRAY_SAMPLING_RATE`` overrides the rate: ``1`` traces every request);
- each finished segment, its subsegments inside, goes to the X-Ray daemon at
  ``AWS_XRAY_DAEMON_ADDRESS`` (``host:port``, or the SDKs' ``tcp:… udp:…`` form) as
  one UDP datagram (`Emitter`): the header line ``{"format": "json", "version": 1}``
  then the segment document. In AWS that is the daemon sidecar; in the twin, the
  control plane.

Without ``AWS_XRAY_DAEMON_ADDRESS`` nothing is traced and nothing costs anything
(`Recorder.from_env` is None, and `service_kit.server` installs no tracer provider).
"""

from __future__ import annotations

import random
import socket
from collections.abc import Mapping
from typing import Any

from service_kit.settings import SettingError

DAEMON_ADDRESS_ENV = "AWS_XRAY_DAEMON_ADDRESS"
TRACING_NAME_ENV = "AWS_XRAY_TRACING_NAME"
SAMPLING_RATE_ENV = "XRAY_SAMPLING_RATE"
# X-Ray's default sampling rule: one request a second, then 5 % of the others.
DEFAULT_RESERVOIR_PER_S = 1
DEFAULT_FIXED_RATE = 0.05
HEADER_LINE = b'{"format": "json", "version": 1}\n'
ORIGIN = "AWS::ECS::Container"

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
