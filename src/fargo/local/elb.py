"""Elastic Load Balancing (ALB) for the twin: target groups, target health, Caddy as data plane.

    elb = ElasticLoadBalancing(
        spec,
        state_dir=Path(".fargo"),
        bind={"public": "127.0.0.1", "internal": "127.0.1.2"},
        listener_port=lambda port: port + 8000 if port < 1024 else port,
        certificate=(Path("certificate.pem"), Path("private-key.pem")),
        on_unhealthy=lambda group, target_id: ...,   # the scheduler replaces that task
    )
    await elb.start()
    elb.register_targets("frontend", [Target("task-1", "127.0.1.7", 80)])
    await elb.wait_healthy("frontend")
    elb.describe_target_health("frontend")  # [TargetHealthDescription(..., state=HEALTHY)]
    await elb.deregister_targets("frontend", ["task-1"])  # returns once drained
    await elb.stop()

The control plane owns target health, as ALB does (Caddy's own health checks are
not used): every ``interval`` (times ``time_scale``) each target gets ``GET
health_check.path`` with the scaled ``timeout`` on a fresh connection, and the
``matcher`` decides. A registered target is ``initial`` and becomes ``healthy``
after one passing check (the first runs at once); ``healthy`` turns ``unhealthy``
after ``unhealthy_threshold`` failures in a row (so does ``initial``), and back after
``healthy_threshold`` passes. ``on_unhealthy`` hears of every turn to unhealthy.

Which targets get requests:

- the healthy targets of a group; if there are none but some are unhealthy, every
  registered target that is not draining (ALB fails open); a group whose targets
  are all still ``initial``, or that has none, answers 503;
- a ``draining`` (deregistered) target gets no new request; `deregister_targets`
  returns when Caddy reports no request in flight to it any more, or after the
  group's ``deregistration_delay`` (scaled), whichever comes first.

How Caddy learns them: a forward to one target group has Caddy look the group's
targets up, as A records of ``<group>.targets.fargo.`` at a small DNS server run
here (on a thread of its own, so a busy event loop never stalls a request), every
0.1 s. Targets then come and go without loading a new config, which
matters under load: at each config load Go's HTTP server closes every keep-alive
connection of the old config after its current response, and a client that sent
its next request on it at that moment sees the connection drop. A weighted
forward, and a group whose targets differ in port, list their targets in the
config (reloaded, coalesced, when they change).

The listening sockets are bound here and handed to Caddy as inherited file
descriptors: Caddy would otherwise bind a fresh SO_REUSEPORT socket at every config
load and close the old one, resetting the connections in its accept queue. An
inherited socket stays the same across loads and Caddy restarts. It also makes
"port in use" an error here, naming the listener.

``X-Amzn-Trace-Id`` has ALB's format, ``Root=1-<8 hex>-<24 hex>`` (``Self=…;`` in front
of a client's own trace), but Caddy has no hex clock, so the 8 hex digits that
are the epoch second at ALB are random here.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import aiohttp
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from cryptography import x509

from fargo.local import caddy_config
from fargo.local.caddy import CaddyError, CaddyProcess, socket_path_fits
from fargo.spec.elb import HealthCheck
from fargo.spec.model import Spec

logger = logging.getLogger(__name__)

HEALTH_CHECK_USER_AGENT = "ELB-HealthChecker/2.0"
UNAVAILABLE_SOCKET = "unavailable.sock"
DRAIN_POLL_SECONDS = 0.02
PUSH_RETRY_SECONDS = 0.2
LISTEN_BACKLOG = 1024
TARGETS_ZONE = "targets.fargo."
# After a change of a group's targets, Caddy may use its previous lookup this long.
LOOKUP_SETTLE_SECONDS = caddy_config.TARGET_LOOKUP_REFRESH_SECONDS + 0.02
# A records that fit a 512-byte UDP answer; a larger group is listed in the config.
LOOKUP_MAX_TARGETS = 28

OnUnhealthy = Callable[[str, str], None]


class TargetState(StrEnum):
    """ELBv2 ``TargetHealth.State``."""

    INITIAL = "initial"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    UNUSED = "unused"
    DRAINING = "draining"


@dataclass(frozen=True)
class Target:
    """An ``ip`` target: a task's address and container port."""

    id: str
    ip: str
    port: int

    @property
    def address(self) -> str:
        return caddy_config.listen_address(self.ip, self.port)


@dataclass(frozen=True)
class TargetHealthDescription:
    """One entry of ``DescribeTargetHealth``."""

    target: Target
    state: TargetState
    reason: str | None
    description: str | None

    @property
    def health_check_port(self) -> int:
        return self.target.port


class ElbError(Exception):
    """Base of the errors this module raises; named after the ELBv2 errors."""


class TargetGroupNotFound(ElbError, LookupError):
    pass


class ValidationError(ElbError, ValueError):
    """The load balancer configuration cannot run (missing address or certificate)."""


class ListenerAddressInUse(ElbError, OSError):
    """A listener's local address is taken by another process."""


@dataclass(eq=False)
class _Registration:
    target: Target
    state: TargetState = TargetState.INITIAL
    reason: str | None = "Elb.InitialHealthChecking"
    description: str | None = "Initial health checks in progress"
    passes: int = 0
    failures: int = 0
    checker: asyncio.Task[None] | None = field(default=None, repr=False)


class ElasticLoadBalancing:
    """The spec's load balancers and target groups on one Caddy process."""

    def __init__(
        self,
        spec: Spec,
        *,
        state_dir: Path,
        bind: Mapping[str, str],
        listener_port: Callable[[int], int],
        certificate: tuple[Path, Path] | None,
        time_scale: float = 0.1,
        on_unhealthy: OnUnhealthy | None = None,
    ) -> None:
        missing = [name for name in spec.load_balancers if name not in bind]
        if missing:
            raise ValidationError(f"no address to listen on for load balancer(s) {missing}")
        https = [
            name
            for name, lb in spec.load_balancers.items()
            if any(listener.protocol == "HTTPS" for listener in lb.listeners)
        ]
        if https and certificate is None:
            raise ValidationError(f"HTTPS listeners of {https} need a certificate")
        if time_scale <= 0:
            raise ValidationError(f"time_scale must be positive, not {time_scale}")
        self.spec = spec
        self.state_dir = state_dir
        self.bind = dict(bind)
        self.listener_port = listener_port
        self.certificate = certificate
        self.time_scale = time_scale
        self.on_unhealthy = on_unhealthy
        self.caddy = CaddyProcess(state_dir)
        self._groups: dict[str, dict[str, _Registration]] = {g: {} for g in spec.target_groups}
        self._tls_server_name: str | None = None
        self._session: aiohttp.ClientSession | None = None
        self._pusher: asyncio.Task[None] | None = None
        self._dirty = asyncio.Event()
        self._updated = asyncio.Condition()
        self._version = 0  # bumped by every change of target state
        self._pushed_version = -1
        self._pushed_config: dict[str, Any] | None = None
        self._sockets: dict[str, socket.socket] = {}  # Caddy server name -> listening socket
        self._routable: dict[str, list[str]] = {g: [] for g in spec.target_groups}
        self._routable_since: dict[str, float] = {g: 0.0 for g in spec.target_groups}
        self._resolver = _TargetResolver()
        self._running = False

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start Caddy with every listener up (503 until targets are healthy)."""
        if self._running:
            return
        self._running = True
        try:
            unavailable = self.caddy.directory / UNAVAILABLE_SOCKET
            if not socket_path_fits(unavailable):
                raise ValidationError(f"state folder path too long for {unavailable}")
            if self.certificate is not None:
                self._tls_server_name = _certificate_name(self.certificate[0])
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(force_close=True, limit=0),
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
            )
            self._listen()
            self._resolver.start()
            self._changed()
            await self.caddy.start(inherit=list(self._sockets.values()))
            await self._push()
            self._pusher = asyncio.create_task(self._push_forever(), name="elb-config-push")
            for group, registrations in self._groups.items():
                for registration in registrations.values():
                    self._start_checks(group, registration)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop health checks and Caddy; idempotent, safe after a failed start."""
        self._running = False
        tasks = [
            r.checker
            for registrations in self._groups.values()
            for r in registrations.values()
            if r.checker is not None
        ]
        pusher, self._pusher = self._pusher, None
        if pusher is not None:
            tasks.append(pusher)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for registrations in self._groups.values():
            for registration in registrations.values():
                registration.checker = None
        async with self._updated:
            self._updated.notify_all()
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        await self.caddy.stop()
        self._resolver.stop()
        sockets, self._sockets = self._sockets, {}
        for sock in sockets.values():
            sock.close()
        self._pushed_config = None  # a started-again Caddy starts from nothing

    def _listen(self) -> None:
        for name, lb in self.spec.load_balancers.items():
            for listener in lb.listeners:
                address, port = self.bind[name], self.listener_port(listener.port)
                family = socket.AF_INET6 if ":" in address else socket.AF_INET
                sock = socket.socket(family, socket.SOCK_STREAM)
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    sock.bind((address, port))
                    sock.listen(LISTEN_BACKLOG)
                except OSError as err:
                    sock.close()
                    where = caddy_config.listen_address(address, port)
                    what = f"listener {listener.protocol}:{listener.port} of load balancer {name}"
                    if err.errno == errno.EADDRINUSE:
                        raise ListenerAddressInUse(
                            f"{where} ({what}) is in use by another process; stop it or "
                            "free the port"
                        ) from err
                    raise ElbError(f"cannot listen on {where} ({what}): {err.strerror}") from err
                self._sockets[caddy_config.server_name(name, listener)] = sock

    # -- targets --------------------------------------------------------------------------

    def register_targets(self, target_group: str, targets: Sequence[Target]) -> None:
        """``RegisterTargets``: each target starts ``initial``; its first check runs at once.

        A target already registered (and not draining) stays as it is.
        """
        registrations = self._group(target_group)
        for target in targets:
            current = registrations.get(target.id)
            if current is not None and current.state is not TargetState.DRAINING:
                continue
            registration = _Registration(target)
            registrations[target.id] = registration
            if self._running:
                self._start_checks(target_group, registration)
        self._changed()

    async def deregister_targets(self, target_group: str, target_ids: Sequence[str]) -> None:
        """``DeregisterTargets``: drain, and return once drained.

        The targets get no new request once Caddy's lookup of the group (at most 0.1 s
        old) or its new config has them gone; requests in flight finish. Returns when
        Caddy reports none left to them, or when the group's ``deregistration_delay``
        (scaled) has passed. Unknown ids are ignored.
        """
        registrations = self._group(target_group)
        draining = []
        for target_id in target_ids:
            registration = registrations.get(target_id)
            if registration is None:
                continue
            if registration.state is not TargetState.DRAINING:
                self._stop_checks(registration)
                registration.state = TargetState.DRAINING
                registration.reason = "Target.DeregistrationInProgress"
                registration.description = "Target deregistration is in progress"
            draining.append(registration)
        if not draining:
            return
        version = self._changed()
        delay = self.spec.target_groups[target_group].deregistration_delay * self.time_scale
        deadline = time.monotonic() + delay
        if self._running:
            await self._wait_pushed(version, deadline)
            # Caddy may route by its previous lookup a little longer (counted in flight).
            await asyncio.sleep(LOOKUP_SETTLE_SECONDS)
            await self._drained({r.target.address for r in draining}, deadline)
        for registration in draining:
            if registrations.get(registration.target.id) is registration:
                del registrations[registration.target.id]
        self._changed()

    def describe_target_health(self, target_group: str) -> list[TargetHealthDescription]:
        """``DescribeTargetHealth`` for every registered target, in registration order."""
        return [
            TargetHealthDescription(r.target, r.state, r.reason, r.description)
            for r in self._group(target_group).values()
        ]

    async def wait_healthy(
        self,
        target_group: str,
        target_ids: Sequence[str] | None = None,
        *,
        timeout: float = 10.0,
    ) -> None:
        """Wait until the targets (default: all registered) are healthy and Caddy routes to them."""
        registrations = self._group(target_group)

        def ready() -> bool:
            ids = list(registrations) if target_ids is None else target_ids
            return (
                all(
                    i in registrations and registrations[i].state is TargetState.HEALTHY
                    for i in ids
                )
                and self._pushed_version >= self._version
            )

        try:
            async with asyncio.timeout(timeout), self._updated:
                await self._updated.wait_for(lambda: ready() or not self._running)
        except TimeoutError:
            states = {i: r.state.value for i, r in registrations.items()}
            raise TimeoutError(
                f"targets of {target_group} not healthy within {timeout:g} s: {states}"
            ) from None
        if not self._running:
            raise ElbError("the load balancers stopped")
        settled = self._routable_since[target_group] + LOOKUP_SETTLE_SECONDS
        await asyncio.sleep(max(0.0, settled - time.monotonic()))

    # -- status ---------------------------------------------------------------------------

    def endpoints(self) -> dict[str, list[str]]:
        """Load balancer → URLs of its listeners, e.g. ``{"public": ["https://127.0.0.1:8443"]}``."""
        return {
            name: [
                f"{listener.protocol.lower()}://"
                f"{caddy_config.listen_address(self.bind[name], self.listener_port(listener.port))}"
                for listener in lb.listeners
            ]
            for name, lb in self.spec.load_balancers.items()
        }

    def describe(self) -> dict[str, Any]:
        """Load balancers, listeners, rules and target groups with their targets (JSON-able)."""
        load_balancers: dict[str, Any] = {}
        for name, lb in self.spec.load_balancers.items():
            listeners = []
            for listener in lb.listeners:
                local = self.listener_port(listener.port)
                listeners.append(
                    {
                        "port": listener.port,
                        "protocol": listener.protocol,
                        "ssl_policy": listener.ssl_policy,
                        "local_address": f"{listener.protocol.lower()}://"
                        f"{caddy_config.listen_address(self.bind[name], local)}",
                        "rules": [
                            {
                                "priority": rule.priority,
                                "conditions": [
                                    c.model_dump(mode="json", exclude_none=True)
                                    for c in rule.conditions
                                ],
                                "action": rule.action.model_dump(mode="json", exclude_none=True),
                            }
                            for rule in listener.rules_by_priority()
                        ],
                        "default_action": listener.default_action.model_dump(
                            mode="json", exclude_none=True
                        ),
                    }
                )
            load_balancers[name] = {
                "scheme": lb.scheme,
                "address": self.bind[name],
                "idle_timeout": lb.idle_timeout,
                "listeners": listeners,
            }
        target_groups = {
            name: {
                "health_check": group.health_check.model_dump(mode="json"),
                "deregistration_delay": group.deregistration_delay,
                "routable": list(self._routable.get(name, [])),
                "targets": [
                    {
                        "id": d.target.id,
                        "ip": d.target.ip,
                        "port": d.target.port,
                        "state": d.state.value,
                        "reason": d.reason,
                        "description": d.description,
                    }
                    for d in self.describe_target_health(name)
                ],
            }
            for name, group in self.spec.target_groups.items()
        }
        return {
            "load_balancers": load_balancers,
            "target_groups": target_groups,
            "caddy": {
                "pid": self.caddy.pid,
                "restarts": self.caddy.restarts,
                "config_loads": self.caddy.loads,
            },
        }

    # -- health checks --------------------------------------------------------------------

    def _start_checks(self, target_group: str, registration: _Registration) -> None:
        check = self.spec.target_groups[target_group].health_check
        registration.checker = asyncio.create_task(
            self._check_forever(target_group, registration, check),
            name=f"health-check {target_group} {registration.target.id}",
        )

    @staticmethod
    def _stop_checks(registration: _Registration) -> None:
        if registration.checker is not None:
            registration.checker.cancel()
            registration.checker = None

    async def _check_forever(
        self, target_group: str, registration: _Registration, check: HealthCheck
    ) -> None:
        interval = check.interval * self.time_scale
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            failure = await self._check(registration.target, check)
            self._record(target_group, registration, check, failure)
            await asyncio.sleep(max(0.0, interval - (loop.time() - started)))

    async def _check(self, target: Target, check: HealthCheck) -> tuple[str, str] | None:
        """None if the target passes, else (reason, description) as ALB reports them."""
        assert self._session is not None
        url = f"http://{target.address}{check.path}"
        try:
            async with self._session.get(
                url,
                allow_redirects=False,
                headers={"User-Agent": HEALTH_CHECK_USER_AGENT},
                timeout=aiohttp.ClientTimeout(total=check.timeout * self.time_scale),
            ) as response:
                status = response.status
        except TimeoutError:
            return "Target.Timeout", "Request timed out"
        except (aiohttp.ClientError, OSError):
            return "Target.FailedHealthChecks", "Health checks failed"
        if check.matches(status):
            return None
        return "Target.ResponseCodeMismatch", f"Health checks failed with these codes: [{status}]"

    def _record(
        self,
        target_group: str,
        registration: _Registration,
        check: HealthCheck,
        failure: tuple[str, str] | None,
    ) -> None:
        if registration.state is TargetState.DRAINING:
            return
        before = registration.state
        if failure is None:
            registration.failures = 0
            registration.passes += 1
            if before is TargetState.INITIAL or (
                before is TargetState.UNHEALTHY and registration.passes >= check.healthy_threshold
            ):
                registration.state = TargetState.HEALTHY
                registration.reason = registration.description = None
        else:
            registration.passes = 0
            registration.failures += 1
            if before is TargetState.UNHEALTHY or (
                registration.failures >= check.unhealthy_threshold
            ):
                registration.state = TargetState.UNHEALTHY
                registration.reason, registration.description = failure
        if registration.state is before:
            return
        logger.info(
            "target %s in %s: %s -> %s",
            registration.target.id,
            target_group,
            before.value,
            registration.state.value,
        )
        self._changed()
        if registration.state is TargetState.UNHEALTHY and self.on_unhealthy is not None:
            try:
                self.on_unhealthy(target_group, registration.target.id)
            except Exception:
                logger.exception(
                    "on_unhealthy(%s, %s) failed", target_group, registration.target.id
                )

    # -- config pushes --------------------------------------------------------------------

    def _compute_routable(self, target_group: str) -> list[str]:
        """Addresses that get new requests: the healthy targets, else (fail open) all."""
        registrations = self._groups[target_group].values()
        active = [r for r in registrations if r.state is not TargetState.DRAINING]
        chosen = [r for r in active if r.state is TargetState.HEALTHY]
        if not chosen and any(r.state is TargetState.UNHEALTHY for r in active):
            chosen = active
        return list(dict.fromkeys(r.target.address for r in chosen))

    def _lookups(self) -> dict[str, caddy_config.DynamicTargets]:
        """Groups Caddy can look up: every target (and service) on one port, IPv4."""
        lookups = {}
        for group, registrations in self._groups.items():
            ports = {self.spec.services[s].port for s in self.spec.services_in(group)}
            ports |= {r.target.port for r in registrations.values()}
            ipv4 = all(_is_ipv4(r.target.ip) for r in registrations.values())
            if len(ports) == 1 and ipv4 and len(registrations) <= LOOKUP_MAX_TARGETS:
                name = f"{group}.{TARGETS_ZONE}"
                lookups[group] = caddy_config.DynamicTargets(name, ports.pop())
        return lookups

    def _changed(self) -> int:
        """Note a change of target state; the pusher renders it and wakes the waiters."""
        now = time.monotonic()
        for group in self._groups:
            routable = self._compute_routable(group)
            if routable != self._routable[group]:
                self._routable[group] = routable
                self._routable_since[group] = now
        self._resolver.publish(
            {
                f"{group}.{TARGETS_ZONE}": [a.rpartition(":")[0] for a in addresses]
                for group, addresses in self._routable.items()
            }
        )
        self._version += 1
        self._dirty.set()
        return self._version

    async def _push_forever(self) -> None:
        while True:
            await self._dirty.wait()
            try:
                await self._push()
            except CaddyError as err:
                logger.warning("pushing the load balancer config failed (%s); retrying", err)
                await asyncio.sleep(PUSH_RETRY_SECONDS)

    async def _push(self) -> None:
        """Render the config and load it if it differs from the one Caddy has."""
        self._dirty.clear()
        version = self._version
        config = caddy_config.render(
            self.spec,
            bind=self.bind,
            listener_port=self.listener_port,
            routable=self._routable,
            certificate=self.certificate,
            tls_server_name=self._tls_server_name,
            unavailable_socket=self.caddy.directory / UNAVAILABLE_SOCKET,
            listener_fds={name: sock.fileno() for name, sock in self._sockets.items()},
            dynamic=self._lookups(),
            resolver=self._resolver.address,
        )
        if config != self._pushed_config:
            try:
                await self.caddy.load(config)
            except CaddyError:
                self._dirty.set()
                raise
            self._pushed_config = config
        self._pushed_version = version
        async with self._updated:
            self._updated.notify_all()

    async def _wait_pushed(self, version: int, deadline: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(_loop_deadline(deadline)), self._updated:
                await self._updated.wait_for(
                    lambda: self._pushed_version >= version or not self._running
                )

    async def _drained(self, addresses: set[str], deadline: float) -> None:
        while time.monotonic() < deadline and self._running:
            try:
                upstreams = await self.caddy.upstreams()
            except CaddyError:
                upstreams = [{"address": a, "num_requests": 1} for a in addresses]
            if not any(
                u.get("address") in addresses and u.get("num_requests", 0) > 0 for u in upstreams
            ):
                return
            await asyncio.sleep(DRAIN_POLL_SECONDS)

    def _group(self, target_group: str) -> dict[str, _Registration]:
        try:
            return self._groups[target_group]
        except KeyError:
            raise TargetGroupNotFound(
                f"no target group {target_group!r}; known: {', '.join(self._groups) or 'none'}"
            ) from None


class _TargetResolver:
    """A DNS server on 127.0.0.1 answering A queries from a snapshot, on a thread of its own.

    Caddy asks it for a group's targets every 0.1 s; answering off the event loop keeps
    requests flowing while the control plane is busy. `publish` swaps the snapshot.
    """

    def __init__(self) -> None:
        self._records: dict[str, tuple[str, ...]] = {}  # lower-case absolute name -> IPv4s
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def address(self) -> str:
        """Where Caddy sends its lookups, as a Caddy network address."""
        if self._socket is None:
            raise ElbError("the target resolver is not started")
        host, port = self._socket.getsockname()[:2]
        return f"udp/{host}:{port}"

    def publish(self, records: Mapping[str, Sequence[str]]) -> None:
        self._records = {name.lower(): tuple(ips) for name, ips in records.items()}

    def start(self) -> None:
        if self._socket is not None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.2)  # how soon `stop` is noticed
        self._socket = sock
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._serve, args=(sock,), name="elb-target-resolver", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop answering; idempotent."""
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.close()

    def _serve(self, sock: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                wire, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            reply = self.reply(wire)
            if reply is not None:
                with contextlib.suppress(OSError):
                    sock.sendto(reply, peer)

    def reply(self, wire: bytes) -> bytes | None:
        """The answer to one query (None: not a query worth answering)."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        if query.flags & dns.flags.QR or len(query.question) != 1:
            return None
        question = query.question[0]
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        addresses = self._records.get(question.name.to_text().lower())
        if addresses is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.A and addresses:
            response.answer.append(
                dns.rrset.from_text_list(
                    question.name, 0, dns.rdataclass.IN, dns.rdatatype.A, list(addresses)
                )
            )
        return response.to_wire()


def _is_ipv4(ip: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(ip), ipaddress.IPv4Address)
    except ValueError:
        return False


def _loop_deadline(monotonic_deadline: float) -> float:
    loop = asyncio.get_running_loop()
    return loop.time() + max(0.0, monotonic_deadline - time.monotonic())


def _certificate_name(chain: Path) -> str | None:
    """A name the listener certificate covers, for clients that send no SNI."""
    try:
        certificate = x509.load_pem_x509_certificate(chain.read_bytes())
    except (OSError, ValueError) as err:
        raise ValidationError(f"cannot read the listener certificate {chain}: {err}") from err
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    for name in names.get_values_for_type(x509.DNSName):
        # A wildcard covers any one label, so ask for one under it.
        return "lb" + name[1:] if name.startswith("*.") else name
    addresses = names.get_values_for_type(x509.IPAddress)
    return str(addresses[0]) if addresses else None
