"""The load balancers' data plane on Caddy: one process, told which targets get requests.

    data_plane = CaddyDataPlane(spec, state_dir=Path(".fargo"), bind={"public": "127.0.0.1"},
                                listener_port=mapped, certificate=None)
    data_plane.update(routable={"frontend": []}, targets={"frontend": []})
    await data_plane.start()            # listeners bound, Caddy up with the config
    version = data_plane.update(routable={"frontend": ["127.0.1.7:80"]},
                                targets={"frontend": [Target("task-1", "127.0.1.7", 80)]})
    await data_plane.wait_pushed(version, deadline)
    await data_plane.drained({"127.0.1.7:80"}, deadline)
    await data_plane.stop()

It implements `fargo.local.elb.data_plane.LoadBalancerDataPlane`: the control plane
decides which targets are routable; `update` hands that over. The target lookups
Caddy makes (`fargo.local.caddy.target_dns`, answered by a process of their own that
outlives the control plane: `fargo.local.dataplane_dns`) see it at once; a config is rendered and
loaded in the background when it differs from the one Caddy has (loads are
coalesced, and retried when Caddy refuses or is restarting). Draining asks Caddy how
many requests are in flight to a target.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fargo.local.caddy import config as caddy_config
from fargo.local.caddy.config import server_name
from fargo.local.caddy.handover import ListenerPair, flat, paired
from fargo.local.caddy.listeners import bind_listeners
from fargo.local.caddy.process import CaddyError, CaddyProcess, socket_path_fits
from fargo.local.caddy.target_dns import LOOKUP_SETTLE_SECONDS, dynamic_targets, target_records
from fargo.local.caddy.tls import certificate_name, https_load_balancers
from fargo.local.dataplane_dns.targets import (
    TargetLookupServer,
    handed_over_listeners,
    recorded_active,
)
from fargo.local.ec2.network import ListenerPort
from fargo.local.ec2.sockets import ServerSocketFactory, bind_problem, bind_socket
from fargo.local.elb.errors import ElbError
from fargo.local.elb.target_health import Target
from fargo.local.events import about
from fargo.local.loops import cancel_and_wait, keep_running
from fargo.local.status import DataPlaneState, DataPlaneStatus
from fargo.spec.model import Spec

logger = logging.getLogger(__name__)
DATA_PLANE = about("load-balancer", "data plane")

UNAVAILABLE_SOCKET = "unavailable.sock"
DRAIN_POLL_SECONDS = 0.02
# A failed config push is retried after a pause that doubles from the first to the last.
PUSH_RETRY_SECONDS = (0.2, 2.0)


class CaddyDataPlane:
    """One Caddy process serving every listener of the spec, and its target resolver."""

    name = "load balancer data plane (Caddy)"
    settle_seconds = LOOKUP_SETTLE_SECONDS

    def __init__(
        self,
        spec: Spec,
        *,
        state_dir: Path,
        bind: Mapping[str, str],
        listener_port: ListenerPort,
        certificate: tuple[Path, Path] | None,
        caddy: CaddyProcess | None = None,
        open_listener: ServerSocketFactory = bind_socket,
        open_local: ServerSocketFactory = bind_socket,
        also_listen: Mapping[str, tuple[str, ServerSocketFactory]] | None = None,
        binds_new_listeners: bool = True,
        access_logs: Path | None = None,
    ) -> None:
        self.spec = spec
        # Caddy binds a listener added while it runs itself where it runs in the network
        # its listeners are bound in; elsewhere they are bound here and Caddy is relaunched
        # with them (see `reconfigure`)
        self.binds_new_listeners = binds_new_listeners and not also_listen
        self._relaunch = False  # with listeners bound here since it started
        self.access_logs = access_logs  # where Caddy writes access logs (None: it does not)
        self.caddy = caddy or CaddyProcess(state_dir)
        self.open_listener = open_listener  # where its listeners are bound
        # load balancer → (address, factory) where its listeners are bound as well, on their
        # own ports: an internet-facing one's ENI, for clients inside the VPC
        self.also_listen = dict(also_listen or {})
        self.bind = bind
        self.listener_port = listener_port
        self.certificate = certificate
        self._tls_server_name: str | None = None
        # Caddy server name -> its listening sockets (`fargo.local.caddy.handover`)
        self._sockets: dict[str, ListenerPair] = {}
        self._also: dict[str, ListenerPair] = {}  # Caddy server name -> its second address
        self._closing: list[ListenerPair] = []  # removed listeners', once Caddy lets go
        # on the loopback Caddy sees, answered by a process that outlives the control plane
        self._resolver = TargetLookupServer(self.caddy.state_dir, self.caddy.name, bind=open_local)
        self._routable: dict[str, list[str]] = {}
        self._targets: dict[str, list[Target]] = {}
        self._pusher: asyncio.Task[None] | None = None
        self._dirty = asyncio.Event()
        self._updated = asyncio.Condition()
        self._version = 0  # bumped by every update
        self._pushed_version = -1
        self._pushed_config: dict[str, Any] | None = None
        self._running = False
        self._adopting = False  # serving beside the Caddy a killed control plane left
        self._handed: dict[str, ListenerPair] = {}  # its listening sockets, until start
        self.failed_pushes = 0  # config pushes that failed (each retried)

    @property
    def up_to_date(self) -> bool:
        """Whether Caddy has the latest update."""
        return self._pushed_version >= self._version

    def validate(self) -> list[str]:
        problems = []
        unavailable = self.caddy.directory / UNAVAILABLE_SOCKET
        if not socket_path_fits(unavailable):
            problems.append(f"state folder path too long for the socket {unavailable}")
        https = https_load_balancers(self.spec)
        if https and self.certificate is None:
            problems.append(f"HTTPS listeners of {https} need a certificate")
        for name, lb in self.spec.load_balancers.items():
            for listener in lb.listeners:
                port = self.listener_port(name, listener.port)
                what = f"load balancer {name!r} listener {listener.port}"
                if self.open_listener is bind_socket:  # elsewhere, the network mode checks
                    problem = bind_problem(self.bind.get(name, "127.0.0.1"), port, what)
                    if problem is not None and not (self._handed or self._adopting):
                        problems.append(problem)
        return problems

    def adopt(self) -> bool:
        """Serve beside the Caddy a killed control plane left running: on its listening
        sockets (kept by its target lookup process), with its target lookups answering that
        run's targets until `release`. False (nothing adopted) if there is nothing to adopt
        or its listeners are not this spec's (another spec, other published ports)."""
        if not self._resolver.adopt():
            return False
        pairs = self._listeners_handed_over(self.caddy.directory)
        if pairs is None:
            self._resolver.disown()
            return False
        self._handed = pairs
        self._adopting = True
        return True

    def adopt_listeners(self, folder: Path) -> bool:
        """Stand by on the listening sockets of a Caddy a killed control plane left in
        another network (VPC mode: the previous VPC; ``folder`` is that Caddy's, its sockets
        kept by its target lookup process): this Caddy listens on the idle socket of each
        pair while new connections keep going to the old one, until `take_traffic`. False
        (nothing adopted) if its listeners are not this spec's."""
        pairs = self._listeners_handed_over(folder)
        if pairs is None:
            return False
        for pair in pairs.values():
            pair.stand_by()
        self._handed = pairs
        return True

    async def take_traffic(self) -> None:
        """New connections to the listeners adopted with `adopt_listeners` come to this
        Caddy from now on (the old one answers what it has taken)."""
        standing = [pair for pair in self._sockets.values() if pair.standing_by]
        await asyncio.gather(*(pair.take_traffic() for pair in standing))
        if standing:
            self._record_active()

    def _listeners_handed_over(self, folder: Path) -> dict[str, ListenerPair] | None:
        """The listener pairs the lookup process of the Caddy in ``folder`` keeps, if they
        are this spec's listeners at their addresses; None (each closed) otherwise."""
        try:
            handed = handed_over_listeners(folder)
        except (OSError, ValueError, KeyError, ElbError) as err:
            logger.warning("the crashed run's listeners were not handed over: %s", err)
            return None
        wanted = {
            server_name(name, listener): (
                self.bind.get(name, "127.0.0.1"),
                self.listener_port(name, listener.port),
            )
            for name, lb in self.spec.load_balancers.items()
            for listener in lb.listeners
        }
        try:
            pairs = paired(handed, recorded_active(folder))
        except ValueError as err:
            logger.warning("the crashed run's listeners were not handed over: %s", err)
            return None
        found = {name: tuple(pair.sockets[0].getsockname()[:2]) for name, pair in pairs.items()}
        if found != wanted:
            for pair in pairs.values():
                pair.close()
            return None
        return pairs

    def disown(self) -> None:
        """Undo `adopt` or `adopt_listeners`: start as if nothing had been left running."""
        handed, self._handed = self._handed, {}
        for pair in handed.values():
            pair.close()
        if self._adopting:
            self._resolver.disown()
        self._adopting = False

    def release(self) -> None:
        """Route to this control plane's targets (both Caddys: they share the lookups)."""
        self._resolver.release()

    def describe(self) -> list[DataPlaneStatus]:
        return [self.status()]

    def status(self) -> DataPlaneStatus:
        problem = self.caddy.problem
        problem = f"caddy {problem}" if problem is not None else None
        if not self._running:
            state = DataPlaneState.STOPPED
        elif problem is not None or self.caddy.pid is None:
            state = DataPlaneState.DOWN
        elif self._resolver.problem is not None:
            # Caddy runs, but its lookups go unanswered: forwards wait, then get 503.
            state, problem = DataPlaneState.DOWN, self._resolver.problem
        else:
            state = DataPlaneState.SERVING
        return DataPlaneStatus(
            name=self.name,
            load_balancers=list(self.spec.load_balancers),
            pid=self.caddy.pid,
            restarts=self.caddy.restarts,
            config_loads=self.caddy.loads,
            state=state,
            problem=problem if state is DataPlaneState.DOWN else None,
            failed_restarts=self.caddy.failed_restarts,
        )

    async def start(self) -> None:
        """Bind the listeners, start the resolver and Caddy, load the config."""
        if self._running:
            return
        self._running = True
        try:
            if self.certificate is not None:
                self._tls_server_name = certificate_name(self.certificate[0])
            if self._handed:
                self._sockets, self._handed = self._handed, {}
                # New connections wait on the other socket of each pair for the new Caddy;
                # the crashed run's Caddy takes what was queued on its own and gets no more.
                # (Standing by, they keep going to it until `take_traffic`.)
                await asyncio.gather(*(pair.hand_over() for pair in self._sockets.values()))
            self._bind_missing(self.spec)
            await self._resolver.start(listeners=flat(self._sockets))
            self._record_active()
            if self.access_logs is not None:
                self.access_logs.mkdir(parents=True, exist_ok=True, mode=0o700)
            await self.caddy.start(inherit=[s for pair in self._all_pairs() for s in pair.sockets])
            await self._push()
            self._pusher = keep_running(
                "load balancer config push", self._push_forever, extra=DATA_PLANE
            )
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop Caddy and the resolver, close the listeners; idempotent."""
        self._running = False
        pusher, self._pusher = self._pusher, None
        await cancel_and_wait(pusher)
        async with self._updated:
            self._updated.notify_all()
        await self.caddy.stop(drain=False)
        await self._resolver.stop()
        pairs = [*self._all_pairs(), *self._closing]
        self._sockets, self._also, self._closing = {}, {}, []
        for pair in pairs:
            pair.close()
        self._pushed_config = None  # a started-again Caddy starts from nothing

    def stop_restarting(self) -> None:
        self.caddy.stop_restarting()
        self._resolver.stop_restarting()

    def reconfigure_problems(self, spec: Spec) -> list[str]:
        """A new listener whose address is taken: a problem naming the listener and what
        to do."""
        problems = []
        serving = {
            server_name(name, listener)
            for name, lb in self.spec.load_balancers.items()
            for listener in lb.listeners
        }  # Caddy holds those it bound itself
        for name, lb in spec.load_balancers.items():
            for listener in lb.listeners:
                if server_name(name, listener) in serving:
                    continue
                port = self.listener_port(name, listener.port)
                what = f"load_balancers.{name}.listeners (port {listener.port})"
                address = self.bind.get(name, "127.0.0.1")
                if self.open_listener is bind_socket:
                    problem = bind_problem(address, port, what)
                else:
                    problem = _probe(self.open_listener, address, port, what)
                if problem is not None:
                    problems.append(problem)
        return problems

    def reconfigure(self, spec: Spec) -> None:
        """Serve ``spec`` from the next config load on. A removed listener's socket is
        shut down once Caddy has let it go (Caddy still holds an inherited copy, which
        would otherwise keep accepting connections nobody serves); a new listener has no
        inherited socket, so Caddy binds its address."""
        self.spec = spec
        kept = {
            server_name(name, listener)
            for name, lb in spec.load_balancers.items()
            for listener in lb.listeners
        }
        for server in [s for s in self._sockets if s not in kept]:
            self._closing.append(self._sockets.pop(server))
            if server in self._also:
                self._closing.append(self._also.pop(server))
        if not self.binds_new_listeners and self._running:
            # A load balancer whose Caddy runs elsewhere than its listeners are bound (an
            # internet-facing one in VPC mode: on this machine, Caddy in its ENI): its new
            # listeners are bound here as at start. A running Caddy cannot inherit a
            # socket, so the next push relaunches it with them: connections wait in the
            # listeners' queues meanwhile, none is refused, and the old Caddy finishes
            # what it was answering.
            self._relaunch = self._bind_missing(spec) or self._relaunch
        self._resolver.keep_listeners(flat(self._sockets))  # for its next start, if any
        self._version += 1
        self._dirty.set()

    def _bind_missing(self, spec: Spec) -> bool:
        """Bind the listeners of ``spec`` that have no sockets yet, at their addresses and
        at the ``also_listen`` ones; whether there were any."""
        added = _pairs(
            bind_listeners(
                spec,
                bind=self.bind,
                listener_port=self.listener_port,
                open_socket=self.open_listener,
                bound=self._sockets,
            )
        )
        self._sockets.update(added)
        for name, (address, factory) in self.also_listen.items():
            also = bind_listeners(
                spec.only_load_balancer(name),
                bind={name: address},
                listener_port=lambda _, port: port,
                open_socket=factory,
                bound=self._also,
            )
            self._also.update(_pairs(also))
        return bool(added)

    def update(
        self, routable: Mapping[str, Sequence[str]], targets: Mapping[str, Sequence[Target]]
    ) -> int:
        """Which targets get requests (group → ``ip:port``), of all registered; a version.

        Lookups answer from it at once; the config follows (see `wait_pushed`).
        """
        self._routable = {group: list(addresses) for group, addresses in routable.items()}
        self._targets = {group: list(members) for group, members in targets.items()}
        self._resolver.publish(target_records(self._routable))
        self._version += 1
        self._dirty.set()
        return self._version

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate`` holds, tested after each config push and at `stop`."""
        async with self._updated:
            await self._updated.wait_for(predicate)

    async def wait_pushed(self, version: int, deadline: float) -> None:
        """Wait (until the `time.monotonic` ``deadline`` at most) until Caddy has ``version``."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(_loop_deadline(deadline)):
                await self.wait_for(lambda: self._pushed_version >= version or not self._running)

    async def drained(self, addresses: set[str], deadline: float) -> None:
        """Wait until Caddy has no request in flight to ``addresses``, or the deadline."""
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

    async def _push_forever(self) -> None:
        """Push every update; a failed push is retried with back-off, its cause told once
        (Caddy restarting makes every push fail until it is back)."""
        delay = PUSH_RETRY_SECONDS[0]
        told: set[str] = set()
        failures = 0
        while True:
            await self._dirty.wait()
            try:
                await self._push()
            except (CaddyError, OSError) as err:
                self._dirty.set()
                failures += 1
                self.failed_pushes += 1
                cause = str(err).splitlines()[0]
                if cause not in told:
                    told.add(cause)
                    logger.warning(
                        "pushing the load balancer config failed (%s); retrying",
                        err,
                        extra=DATA_PLANE,
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, PUSH_RETRY_SECONDS[1])
                continue
            if failures:
                logger.info(
                    "load balancer config pushed after %d failed attempts",
                    failures,
                    extra=DATA_PLANE,
                )
            delay, told, failures = PUSH_RETRY_SECONDS[0], set(), 0

    async def _push(self) -> None:
        """Render the config and load it if it differs from the one Caddy has.

        A config that changes Caddy's servers is loaded after the listeners are handed
        over (`fargo.local.caddy.handover`): it listens on the sockets that get the new
        connections, and the old servers stop with none of them."""
        self._dirty.clear()
        version = self._version
        if self._relaunch:
            logger.info("relaunching caddy with its new listeners' sockets", extra=DATA_PLANE)
            # New connections wait on the other socket of each pair for the new Caddy; the
            # old one answers what it took (closing its keep-alive connections) and exits.
            if self._pushed_config is not None:
                await asyncio.gather(*(pair.hand_over() for pair in self._all_pairs()))
            await self.caddy.stop()
            self._pushed_config = None  # the new Caddy has none (a failed start is retried)
            self._record_active()
            await self.caddy.start(inherit=[s for pair in self._all_pairs() for s in pair.sockets])
            self._relaunch = False
        config = self._render()
        if config != self._pushed_config:
            handed: list[ListenerPair] = []
            if self._pushed_config is not None:  # Caddy has servers to stop
                pairs = self._all_pairs()
                done = await asyncio.gather(*(pair.hand_over() for pair in pairs))
                handed = [pair for pair, did in zip(pairs, done, strict=True) if did]
                config = self._render()
            try:
                await self.caddy.load(config)
            except CaddyError:
                for pair in handed:  # Caddy still listens where it did
                    pair.take_back()
                self._dirty.set()
                raise
            self._pushed_config = config
            if handed:
                self._record_active()
        self._close_removed_listeners()
        self._pushed_version = version
        async with self._updated:
            self._updated.notify_all()

    def _record_active(self) -> None:
        with contextlib.suppress(OSError):  # a full disk: a take-over may steer wrongly
            # the socket new connections go to: a take-over listens on the other one
            self._resolver.record_active({name: p.steered for name, p in self._sockets.items()})

    def _all_pairs(self) -> list[ListenerPair]:
        return [*self._sockets.values(), *self._also.values()]

    def _render(self) -> dict[str, Any]:
        return caddy_config.render(
            self.spec,
            bind=self.bind,
            listener_port=self.listener_port,
            routable=self._routable,
            certificate=self.certificate,
            tls_server_name=self._tls_server_name,
            unavailable_socket=self.caddy.directory / UNAVAILABLE_SOCKET,
            listener_fds={
                name: [pair.fd, *([self._also[name].fd] if name in self._also else [])]
                for name, pair in self._sockets.items()
            },
            dynamic=dynamic_targets(self.spec, self._targets),
            resolver=self._resolver.address,
            access_logs=self.access_logs,
        )

    def _close_removed_listeners(self) -> None:
        closing, self._closing = self._closing, []
        for pair in closing:
            # Shutting a listening socket down stops it listening in every process that
            # holds it: new connections are refused, not left waiting in its queue.
            pair.shutdown()
            pair.close()


def _pairs(sockets: Mapping[str, socket.socket]) -> dict[str, ListenerPair]:
    """Each listener's socket with a second one beside it; all closed on failure."""
    pairs: dict[str, ListenerPair] = {}
    try:
        for name, sock in sockets.items():
            pairs[name] = ListenerPair(sock)
    except BaseException:
        for sock in sockets.values():
            sock.close()
        for pair in pairs.values():
            pair.close()
        raise
    return pairs


def _probe(open_listener: ServerSocketFactory, address: str, port: int, what: str) -> str | None:
    """Whether ``address:port`` can be bound where ``open_listener`` binds (an ENI's
    namespace): None, or the problem."""
    try:
        probe = open_listener(socket.SOCK_STREAM, address, port)
    except OSError as err:
        return f"{what}: {address}:{port} cannot be bound: {err.strerror or err}"
    probe.close()
    return None


def _loop_deadline(monotonic_deadline: float) -> float:
    loop = asyncio.get_running_loop()
    return loop.time() + max(0.0, monotonic_deadline - time.monotonic())
