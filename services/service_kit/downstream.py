"""The one pooled HTTP client a process uses to call other services.

A :class:`Downstream` holds one keep-alive pool (`service_kit.http_pool`, aiohttp's
client) from its first call to ASGI shutdown; ASGI start-up loads aiohttp in the
background, so the process listens first. It balances over the callee's tasks itself:
the callee's host name is resolved with ``getaddrinfo`` (Cloud Map multivalue
answers, or the twin's resolver), the address list is cached for
:data:`ADDRESS_TTL_S`, and every request goes to a random address with the
original ``Host`` header. The connection pool is per address, so successive
requests reuse warm connections to *all* tasks instead of pinning one.

Failures never hang the caller; they become :class:`DownstreamError`:

- unresolvable name, refused or reset connection -> 502,
- connect or read timeout -> 504.

A refused connection, a connection the callee dropped or reset (a task killed
mid-request), or a connect timeout (a task whose host stopped answering) is
retried once after dropping the cached addresses, on another address when
there is one (a connect timeout only then: the same address would time out
again): GET is idempotent, and a task that is being replaced or has died
should not cost a failed request. A read timeout is not retried: the request
was sent, and the caller has waited long enough. For
the same reason a ``502 Bad Gateway`` answer (what a load balancer says when
the target it chose died mid-request) is retried, twice at most: the load
balancer picks a target again.

A read timeout (or connect timeout) ejects the address for :data:`EJECTION_S`
(outlier detection, as Envoy and App Mesh do): a hung task (stopped, deadlocked) keeps
accepting connections and stays in discovery until health checks fail, and every
request sent to it would wait the whole read timeout. So the next requests go to the
name's other addresses at once, and the cached addresses are looked up again. When
every address is ejected, all of them are used: a name is never left with nothing to
call.
"""

from __future__ import annotations

import asyncio
import importlib
import ipaddress
import random
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from opentelemetry import context as context_api
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind
from yarl import URL

from service_kit.asgi import Response
from service_kit.call_failures import BadResponse, ConnectionFailed, ConnectTimeout, ReadTimeout
from service_kit.settings import SettingError, env_float

if TYPE_CHECKING:
    from service_kit.http_pool import Pool

CONNECT_TIMEOUT_ENV = "DOWNSTREAM_CONNECT_TIMEOUT"
READ_TIMEOUT_ENV = "DOWNSTREAM_READ_TIMEOUT"
DEFAULT_CONNECT_TIMEOUT_S = 2.0
DEFAULT_READ_TIMEOUT_S = 5.0
ADDRESS_TTL_S = 5.0
# How long an address that let a request time out is avoided: long enough for health
# checks to take a hung task out of discovery, short enough to try a recovered one again.
EJECTION_S = 5.0
MAX_ATTEMPTS = 2
BAD_GATEWAY = 502  # a load balancer's answer when its target failed mid-request
# A target that dies resets every request the load balancer has in flight to it, on each
# of its pooled connections: a 502 is sent again up to twice, each time the load balancer
# picks a target again (by then without the dead one, or on a fresh connection).
BAD_GATEWAY_ATTEMPTS = 3
URL_CACHE_SIZE = 1024
TRACE_HEADER = "X-Amzn-Trace-Id"


@dataclass(frozen=True, slots=True)
class Callee:
    """A service to call, from a base URL such as
    ``http://private.backend.microservice.local:8090``.

    ``netloc`` is ``host:port`` as written in a URL; ``host_header`` is what the
    callee should see in ``Host`` (the port is left out when it is 80).
    """

    url: str
    host: str
    port: int
    base_path: str
    netloc: str
    host_header: str
    is_ip: bool

    @classmethod
    def parse(cls, url: str, *, setting: str) -> Callee:
        """Parse the base URL held by environment variable ``setting``."""
        expected = f"{setting}={url!r}: expected a base URL like http://host:port"
        try:
            parts = urlsplit(url.strip())
            port = parts.port or 80
        except ValueError as exc:
            raise SettingError(f"{expected} ({exc})") from None
        host = parts.hostname
        if parts.scheme != "http" or not host or parts.query or parts.fragment:
            raise SettingError(expected + " (plain http, no query or fragment)")
        try:
            is_ip = ipaddress.ip_address(host) is not None
        except ValueError:
            is_ip = False
        netloc = format_netloc(host, port)
        return cls(
            url=url.strip().rstrip("/"),
            host=host,
            port=port,
            base_path=parts.path.rstrip("/"),
            netloc=netloc,
            host_header=netloc if port != 80 else format_netloc(host, None),
            is_ip=is_ip,
        )


def format_netloc(host: str, port: int | None) -> str:
    """``host:port`` with IPv6 addresses in brackets."""
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


def env_callee(environ: Mapping[str, str], name: str) -> Callee | None:
    """The :class:`Callee` named by ``environ[name]``, or ``None`` when unset."""
    raw = environ.get(name, "").strip()
    return Callee.parse(raw, setting=name) if raw else None


class DownstreamError(Exception):
    """A call to another service failed; :meth:`response` is what to answer."""

    def __init__(self, status: int, reason: str, callee: str, address: str | None = None) -> None:
        super().__init__(f"{callee}: {reason}")
        self.status = status
        self.reason = reason
        self.callee = callee
        self.address = address

    def response(self) -> Response:
        """A short JSON error response: ``{"error": ..., "callee": ...}``."""
        payload = {"error": self.reason, "callee": self.callee}
        if self.address is not None:
            payload["address"] = self.address
        return Response.json(payload, self.status)


@dataclass(frozen=True, slots=True)
class DownstreamResponse:
    """The callee's answer."""

    status: int
    body: bytes
    content_type: bytes


class AddressCache:
    """A short-lived cache of each host's addresses, as ``host:port`` strings.

    Concurrent look-ups of the same name share one ``getaddrinfo`` call.
    """

    def __init__(self, ttl_s: float = ADDRESS_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[tuple[str, int], tuple[float, list[str]]] = {}
        self._pending: dict[tuple[str, int], asyncio.Future[list[str]]] = {}

    def cached(self, host: str, port: int) -> list[str] | None:
        """``host``'s addresses if they are known and fresh (no I/O)."""
        entry = self._entries.get((host, port))
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        return None

    async def resolve(self, host: str, port: int) -> list[str]:
        """Addresses of ``host``; raises ``socket.gaierror`` when it has none."""
        cached = self.cached(host, port)
        if cached is not None:
            return cached
        key = (host, port)
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._lookup(host, port))
            self._pending[key] = pending

            def done(future: asyncio.Future[list[str]]) -> None:
                self._pending.pop(key, None)
                if not future.cancelled():
                    future.exception()  # retrieved, even if every waiter timed out

            pending.add_done_callback(done)
        return await asyncio.shield(pending)

    async def _lookup(self, host: str, port: int) -> list[str]:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        netlocs = list(dict.fromkeys(format_netloc(str(info[4][0]), port) for info in infos))
        if not netlocs:
            raise socket.gaierror(socket.EAI_NONAME, "no addresses")
        self._entries[(host, port)] = (time.monotonic() + self.ttl_s, netlocs)
        return netlocs

    def forget(self, host: str, port: int) -> None:
        """Drop ``host``'s addresses, e.g. after one of them refused a connection."""
        self._entries.pop((host, port), None)


class Downstream:
    """Pooled keep-alive HTTP client with per-request address balancing.

    Lifecycle: construct (no I/O) -> :meth:`start` (inside the event loop, at
    ASGI start-up) -> :meth:`get` ... -> :meth:`stop` (idempotent).
    """

    def __init__(
        self,
        *,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
        address_ttl_s: float = ADDRESS_TTL_S,
        ejection_s: float = EJECTION_S,
        preload: bool = True,
    ) -> None:
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.preload = preload
        self.ejection_s = ejection_s
        self.addresses = AddressCache(address_ttl_s)
        self._ejected: dict[str, float] = {}  # address -> until (monotonic)
        self._started = False
        self._pool: Pool | None = None
        self._urls: dict[tuple[str, str], URL] = {}
        self._tracer: trace.Tracer | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str], *, preload: bool = True) -> Downstream:
        """Timeouts from ``DOWNSTREAM_CONNECT_TIMEOUT`` / ``DOWNSTREAM_READ_TIMEOUT``."""
        return cls(
            connect_timeout_s=env_float(environ, CONNECT_TIMEOUT_ENV, DEFAULT_CONNECT_TIMEOUT_S),
            read_timeout_s=env_float(environ, READ_TIMEOUT_ENV, DEFAULT_READ_TIMEOUT_S),
            preload=preload,
        )

    async def start(self) -> None:
        """Load the connection pool's module in the background (unless ``preload`` is
        off: a process that calls once, or seldom, loads it at its first call and spares
        its start the CPU); trace calls if a tracer provider is installed."""
        if self._started:
            return
        self._started = True
        provider = trace.get_tracer_provider()
        if not isinstance(provider, trace.ProxyTracerProvider):  # one was installed
            self._tracer = provider.get_tracer(__name__)
        if self.preload:
            preload_pool()

    async def stop(self) -> None:
        """Close the pool (safe to call twice, or without :meth:`start`)."""
        self._started = False
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def _open_pool(self) -> Pool:
        """The pool, opened at the first call (waiting for the module if still loading)."""
        if self._pool is None:
            if not self._started:
                raise RuntimeError("Downstream.get() called before start()")
            from service_kit.http_pool import Pool

            self._pool = Pool(
                connect_timeout_s=self.connect_timeout_s, read_timeout_s=self.read_timeout_s
            )
        return self._pool

    async def get(
        self, callee: Callee, path: str, *, trace_id: str | None = None
    ) -> DownstreamResponse:
        """GET ``path`` (e.g. ``/endpoint``) from one of the callee's tasks.

        In a traced request (`service_kit.xray`) the call is a subsegment and the callee
        gets the trace header naming it as parent; else ``trace_id`` is passed on as is."""
        pool = self._open_pool()
        url = callee.url + path
        headers = {"Host": callee.host_header}
        tracer = self._tracer
        current = None if tracer is None else context_api.get_current()
        if current is None or trace.get_current_span(current) is trace.INVALID_SPAN:
            if trace_id is not None:
                headers[TRACE_HEADER] = trace_id
            return await self._get(pool, callee, path, url, headers)
        # Traced: the call is a client span (a remote subsegment), and the callee continues
        # the trace under it.
        assert tracer is not None
        span = start_call_span(tracer, callee.host, url, headers, current)
        if not span.is_recording():
            if trace_id is not None and TRACE_HEADER not in headers:  # another propagator's
                headers[TRACE_HEADER] = trace_id
            return await self._get(pool, callee, path, url, headers)
        try:
            answer = await self._get(pool, callee, path, url, headers)
        except DownstreamError as exc:
            end_call_span(span, exc.status)
            raise
        except BaseException:
            end_call_span(span, 500)
            raise
        end_call_span(span, answer.status)
        return answer

    async def _get(
        self,
        pool: Pool,
        callee: Callee,
        path: str,
        url: str,
        headers: dict[str, str],
    ) -> DownstreamResponse:
        attempt = 1
        failed: str | None = None
        while True:
            address = await self._pick_address(callee, url, avoid=failed)
            try:
                status, body, content_type = await pool.get(
                    self._url(address, callee.base_path + path), headers
                )
            except ConnectTimeout as exc:
                self.addresses.forget(callee.host, callee.port)
                self._eject(address)
                # Nothing was sent: another task may answer. The same address again would
                # only cost a second timeout.
                if attempt < MAX_ATTEMPTS and await self._has_other(callee, url, address):
                    attempt += 1
                    failed = address
                    continue
                reason = f"connect timed out after {self.connect_timeout_s:g}s"
                raise DownstreamError(504, reason, url, address) from exc
            except ReadTimeout as exc:
                # Sent, so not sent again; but the next requests go elsewhere.
                self.addresses.forget(callee.host, callee.port)
                self._eject(address)
                reason = f"no response within {self.read_timeout_s:g}s"
                raise DownstreamError(504, reason, url, address) from exc
            except ConnectionFailed as exc:  # refused, reset, or dropped
                self.addresses.forget(callee.host, callee.port)
                if attempt < MAX_ATTEMPTS:
                    attempt += 1
                    failed = address
                    continue
                raise DownstreamError(502, str(exc), url, address) from exc
            except BadResponse as exc:
                raise DownstreamError(502, str(exc), url, address) from exc
            if status == BAD_GATEWAY and attempt < BAD_GATEWAY_ATTEMPTS:
                attempt += 1
                continue
            return DownstreamResponse(status, body, content_type)

    def _url(self, address: str, path: str) -> URL:
        # Parsing a URL costs more than the dictionary look-up; addresses change
        # as tasks come and go, so the cache is bounded.
        key = (address, path)
        url = self._urls.get(key)
        if url is None:
            if len(self._urls) >= URL_CACHE_SIZE:
                self._urls.clear()
            url = self._urls[key] = URL(f"http://{address}{path}")
        return url

    async def _pick_address(self, callee: Callee, url: str, *, avoid: str | None) -> str:
        """A random address of the callee's, if possible not ``avoid`` (which just failed)."""
        if callee.is_ip:
            return callee.netloc
        addresses = self.addresses.cached(callee.host, callee.port)
        if addresses is None:
            addresses = await self._resolve(callee, url)
        if len(addresses) == 1:
            return addresses[0]
        if self._ejected:
            addresses = self._not_ejected(addresses)
        if avoid is not None and avoid in addresses and len(addresses) > 1:
            addresses = [address for address in addresses if address != avoid]
        return random.choice(addresses)  # noqa: S311 - balancing, not security

    def _eject(self, address: str) -> None:
        """Avoid ``address`` for a while (see the module docstring)."""
        now = time.monotonic()
        # Expired entries go here, so the table holds at most the addresses that failed
        # within the last ejection time.
        self._ejected = {a: until for a, until in self._ejected.items() if until > now}
        self._ejected[address] = now + self.ejection_s

    def _not_ejected(self, addresses: list[str]) -> list[str]:
        """``addresses`` but those ejected; all of them if every one is."""
        now = time.monotonic()
        healthy = [a for a in addresses if self._ejected.get(a, 0.0) <= now]
        return healthy or addresses

    async def _has_other(self, callee: Callee, url: str, address: str) -> bool:
        """Whether the callee's name (looked up again) has an address but ``address``."""
        if callee.is_ip:
            return False
        addresses = self.addresses.cached(callee.host, callee.port)
        if addresses is None:
            addresses = await self._resolve(callee, url)
        return any(other != address for other in addresses)

    async def _resolve(self, callee: Callee, url: str) -> list[str]:
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                return await self.addresses.resolve(callee.host, callee.port)
        except socket.gaierror as exc:
            reason = f"cannot resolve {callee.host}: {exc.strerror}"
            raise DownstreamError(502, reason, url) from exc
        except TimeoutError as exc:
            reason = f"resolving {callee.host} took over {self.connect_timeout_s:g}s"
            raise DownstreamError(504, reason, url) from exc


def start_call_span(
    tracer: trace.Tracer,
    host: str,
    url: str,
    headers: dict[str, str],
    current: context_api.Context | None = None,
) -> trace.Span:
    """A client span for a GET of ``url`` from ``host``, under the current span (of
    ``current``, the current context); the global propagator writes its trace header into
    ``headers``."""
    if current is None:
        current = context_api.get_current()
    span = tracer.start_span(host, current, SpanKind.CLIENT)
    if span is trace.get_current_span(current):  # not sampled: the parent stands for it
        propagate.inject(headers, current)
        return span
    propagate.inject(headers, trace.set_span_in_context(span, current))
    if span.is_recording():
        span.set_attributes({"http.request.method": "GET", "url.full": url})
    return span


def end_call_span(span: trace.Span, status: int) -> None:
    """The call answered ``status`` (or failed: 502/504, 500) now."""
    span.set_attribute("http.response.status_code", status)
    span.end()


def preload_pool() -> None:
    """Import `service_kit.http_pool` (aiohttp with it) in a background thread: the
    process serves meanwhile, and the first call waits for the import if it is not done."""
    threading.Thread(
        target=importlib.import_module,
        args=("service_kit.http_pool",),
        name="http_pool import",
        daemon=True,
    ).start()
