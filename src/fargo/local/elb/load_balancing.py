"""Elastic Load Balancing (ALB) for the twin: target groups, target health, draining.

    elb = ElasticLoadBalancing(
        spec,
        data_plane=CaddyDataPlane(...),           # any `LoadBalancerDataPlane`
        addresses={"public": "127.0.0.1", "internal": "127.0.1.2"},
        listener_port=lambda lb, port: port + 8000 if port < 1024 else port,
        clock=TwinClock(0.1),
        on_unhealthy=lambda group, target_id: ...,   # the scheduler replaces that task
    )
    await elb.start()
    elb.register_targets("frontend", [Target("task-1", "127.0.1.7", 80)])
    await elb.wait_healthy("frontend")
    elb.describe_target_health("frontend")  # [TargetHealthDescription(..., state=HEALTHY)]
    await elb.deregister_targets("frontend", ["task-1"])  # returns once drained
    await elb.stop()

This is the control plane: it keeps the target groups and decides which targets get
requests. The parts it wires: target states and health checks,
`fargo.local.elb.target_health` (``on_unhealthy`` hears of every turn to unhealthy);
the data plane that carries requests, through `fargo.local.elb.data_plane`; the
errors, `fargo.local.elb.errors`.

Which targets get requests: the healthy targets of a group; if there are none but
some are unhealthy, every registered target that is not draining (ALB fails open);
a group whose targets are all still ``initial``, or that has none, answers 503. A
``draining`` (deregistered) target gets no new request; `deregister_targets`
returns when the data plane reports no request in flight to it any more, or after
the group's ``deregistration_delay`` (on the twin's clock), whichever comes first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence

from fargo.local.clock import TwinClock
from fargo.local.ec2.network import ListenerPort, SocketFactory
from fargo.local.elb import describe as elb_describe
from fargo.local.elb.data_plane import LoadBalancerDataPlane
from fargo.local.elb.errors import (
    ElbError,
    ListenerAddressInUse,
    TargetGroupNotFound,
    ValidationError,
)
from fargo.local.elb.target_health import (
    HealthChecker,
    Target,
    TargetHealthDescription,
    TargetRegistration,
    TargetState,
    routable_addresses,
)
from fargo.local.events import about
from fargo.local.status import LoadBalancingStatus
from fargo.spec.elb import TargetGroup
from fargo.spec.model import Spec

__all__ = [
    "ElasticLoadBalancing",
    "ElbError",
    "ListenerAddressInUse",
    "Target",
    "TargetGroupNotFound",
    "TargetHealthDescription",
    "TargetState",
    "ValidationError",
]

logger = logging.getLogger(__name__)

OnUnhealthy = Callable[[str, str], None]


class ElasticLoadBalancing:
    """The spec's load balancers and target groups, on one data plane."""

    name = "load balancers"

    def __init__(
        self,
        spec: Spec,
        *,
        data_plane: LoadBalancerDataPlane,
        addresses: Mapping[str, str],
        listener_port: ListenerPort,
        clock: TwinClock,
        socket_factory: SocketFactory | None = None,
        on_unhealthy: OnUnhealthy | None = None,
    ) -> None:
        self.spec = spec
        self.data_plane = data_plane
        self.bind = dict(addresses)
        self.listener_port = listener_port
        self.clock = clock
        self.on_unhealthy = on_unhealthy
        self._data_plane = data_plane
        self._health = HealthChecker(
            clock=clock, on_transition=self._health_changed, socket_factory=socket_factory
        )
        self._groups: dict[str, dict[str, TargetRegistration]] = {g: {} for g in spec.target_groups}
        self._routable: dict[str, list[str]] = {g: [] for g in spec.target_groups}
        self._routable_since: dict[str, float] = {g: 0.0 for g in spec.target_groups}
        # Target groups no longer in the spec, with their last settings, while targets drain.
        self._retired: dict[str, TargetGroup] = {}
        self._running = False
        self._version = 0  # the data plane's version of the latest target states

    # -- lifecycle ------------------------------------------------------------------------

    def validate(self) -> list[str]:
        missing = [name for name in self.spec.load_balancers if name not in self.bind]
        problems = [f"no address to listen on for load balancer(s) {missing}"] if missing else []
        return problems + self._data_plane.validate()

    async def start(self) -> None:
        """Start the data plane with every listener up (503 until targets are healthy)."""
        problems = self.validate()
        if problems:
            raise ValidationError("; ".join(problems))
        if self._running:
            return
        self._running = True
        try:
            self._health.start()
            self._changed()
            await self._data_plane.start()
            for group, registrations in self._groups.items():
                for registration in registrations.values():
                    self._start_checks(group, registration)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop health checks and the data plane; idempotent, safe after a failed start."""
        self._running = False
        await self._health.stop()
        await self._data_plane.stop()

    # -- configuration --------------------------------------------------------------------

    def reconfigure(self, spec: Spec) -> None:
        """Apply a new spec: new target groups (empty), new health check settings (each
        target's checks restart with them, its state kept), new rules and listeners (the
        data plane loads them; see its `reconfigure`). A removed group keeps its targets
        until they are deregistered; `delete_target_group` removes it then."""
        before, self.spec = self.spec, spec
        for name in spec.target_groups:
            self._retired.pop(name, None)
            if name not in self._groups:
                self._groups[name] = {}
                self._routable[name] = []
                self._routable_since[name] = 0.0
        for name, group in before.target_groups.items():
            if name not in spec.target_groups:
                self._retired[name] = group
            elif group.health_check != spec.target_groups[name].health_check and self._running:
                for registration in self._groups[name].values():
                    if registration.state is not TargetState.DRAINING:
                        self._health.stop_checks(registration)
                        self._start_checks(name, registration)
        self._data_plane.reconfigure(spec)
        self._changed()

    def delete_target_group(self, name: str) -> None:
        """``DeleteTargetGroup`` of a group the spec no longer has; refused while it has
        targets (`ResourceInUse` on AWS)."""
        if name in self.spec.target_groups:
            raise ValidationError(f"target group {name!r} is still in the spec")
        registrations = self._groups.get(name, {})
        if registrations:
            raise ValidationError(
                f"target group {name!r} still has targets: {', '.join(registrations)}"
            )
        self._groups.pop(name, None)
        self._routable.pop(name, None)
        self._routable_since.pop(name, None)
        self._retired.pop(name, None)
        self._changed()

    def _settings(self, target_group: str) -> TargetGroup:
        """A group's settings: the spec's, or a removed group's last ones."""
        group = self.spec.target_groups.get(target_group) or self._retired.get(target_group)
        if group is None:
            raise TargetGroupNotFound(f"no target group {target_group!r}")
        return group

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
            registration = TargetRegistration(target)
            registrations[target.id] = registration
            if self._running:
                self._start_checks(target_group, registration)
        self._changed()

    async def deregister_targets(self, target_group: str, target_ids: Sequence[str]) -> None:
        """``DeregisterTargets``: drain, and return once drained.

        The targets get no new request once the data plane has them gone (within its
        ``settle_seconds``); requests in flight finish. Returns when the data plane
        reports none left to them, or when the group's ``deregistration_delay``
        (scaled) has passed. Unknown ids are ignored.
        """
        registrations = self._group(target_group)
        draining = []
        for target_id in target_ids:
            registration = registrations.get(target_id)
            if registration is None:
                continue
            if registration.state is not TargetState.DRAINING:
                self._health.stop_checks(registration)
                registration.deregister()
            draining.append(registration)
        if not draining:
            return
        version = self._changed()
        delay = self.clock.interval(self._settings(target_group).deregistration_delay)
        deadline = time.monotonic() + delay
        if self._running:
            await self._data_plane.wait_pushed(version, deadline)
            # The data plane may route by its previous lookup a little longer (counted in flight).
            await asyncio.sleep(self._data_plane.settle_seconds)
            await self._data_plane.drained({r.target.address for r in draining}, deadline)
        for registration in draining:
            if registrations.get(registration.target.id) is registration:
                del registrations[registration.target.id]
        self._changed()

    async def wait_routed(self, timeout: float) -> None:
        """Wait until the data plane routes by the latest target states (a deregistered
        target gets no new request), ``timeout`` seconds at most."""
        if not self._running:
            return
        deadline = time.monotonic() + timeout
        await self._data_plane.wait_pushed(self._version, deadline)
        settle = min(self._data_plane.settle_seconds, deadline - time.monotonic())
        await asyncio.sleep(max(0.0, settle))

    def describe_target_health(self, target_group: str) -> list[TargetHealthDescription]:
        """``DescribeTargetHealth`` for every registered target, in registration order."""
        return [r.describe() for r in self._group(target_group).values()]

    async def wait_healthy(
        self,
        target_group: str,
        target_ids: Sequence[str] | None = None,
        *,
        timeout: float = 10.0,
    ) -> None:
        """Wait until the targets (default: all registered) are healthy and routed to."""
        registrations = self._group(target_group)

        def ready() -> bool:
            ids = list(registrations) if target_ids is None else target_ids
            return (
                all(
                    i in registrations and registrations[i].state is TargetState.HEALTHY
                    for i in ids
                )
                and self._data_plane.up_to_date
            )

        try:
            async with asyncio.timeout(timeout):
                await self._data_plane.wait_for(lambda: ready() or not self._running)
        except TimeoutError:
            states = {i: r.state.value for i, r in registrations.items()}
            raise TimeoutError(
                f"targets of {target_group} not healthy within {timeout:g} s: {states}"
            ) from None
        if not self._running:
            raise ElbError("the load balancers stopped")
        settled = self._routable_since[target_group] + self._data_plane.settle_seconds
        await asyncio.sleep(max(0.0, settled - time.monotonic()))

    # -- status ---------------------------------------------------------------------------

    def endpoints(self) -> dict[str, list[str]]:
        """Load balancer → URLs of its listeners, e.g. ``{"public": ["https://127.0.0.1:8443"]}``."""
        return elb_describe.endpoints(self.spec, bind=self.bind, listener_port=self.listener_port)

    def describe(self) -> LoadBalancingStatus:
        """Load balancers, listeners, rules, target groups with their targets, data plane."""
        return LoadBalancingStatus(
            load_balancers=elb_describe.describe_load_balancers(
                self.spec, bind=self.bind, listener_port=self.listener_port
            ),
            target_groups={
                name: elb_describe.describe_target_group(
                    group,
                    routable=self._routable.get(name, []),
                    targets=self.describe_target_health(name),
                )
                for name, group in self.spec.target_groups.items()
            },
            data_planes=self._data_plane.describe(),
        )

    # -- target state ---------------------------------------------------------------------

    def _start_checks(self, target_group: str, registration: TargetRegistration) -> None:
        check = self._settings(target_group).health_check
        self._health.start_checks(target_group, registration, check)

    def _health_changed(self, target_group: str, registration: TargetRegistration) -> None:
        self._changed()
        if registration.state is TargetState.UNHEALTHY and self.on_unhealthy is not None:
            try:
                self.on_unhealthy(target_group, registration.target.id)
            except Exception:
                logger.exception(
                    "on_unhealthy(%s, %s) failed",
                    target_group,
                    registration.target.id,
                    extra=about("target-group", target_group),
                )

    def _changed(self) -> int:
        """Note a change of target state; the data plane follows and wakes the waiters."""
        now = time.monotonic()
        for group, registrations in self._groups.items():
            routable = routable_addresses(registrations.values())
            if routable != self._routable[group]:
                self._routable[group] = routable
                self._routable_since[group] = now
        targets = {
            group: [r.target for r in registrations.values()]
            for group, registrations in self._groups.items()
        }
        self._version = self._data_plane.update(self._routable, targets)
        return self._version

    def _group(self, target_group: str) -> dict[str, TargetRegistration]:
        try:
            return self._groups[target_group]
        except KeyError:
            raise TargetGroupNotFound(
                f"no target group {target_group!r}; known: {', '.join(self._groups) or 'none'}"
            ) from None
