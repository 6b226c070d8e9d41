"""Target health as ALB keeps it: registered targets, their states, the health checker.

    checker = HealthChecker(clock=TwinClock(0.1), on_transition=lambda group, registration: ...)
    checker.start()
    registration = TargetRegistration(Target("task-1", "127.0.1.7", 80))
    checker.start_checks("frontend", registration, spec.target_groups["frontend"].health_check)
    registration.describe()   # TargetHealthDescription(..., state=INITIAL, ...)
    await checker.stop()

The control plane owns target health, as ALB does (Caddy's own health checks are
not used): every ``interval`` (on the twin's clock) each target gets ``GET
health_check.path`` on a fresh connection (made where the network mode says the load
balancer is: ``socket_factory``), and the ``matcher`` decides. The timeout
is scaled less than the interval (see `check_timeout`): a fast clock should make
checks frequent, not make a loaded target fail them. A registered target is
``initial`` and becomes ``healthy`` after one passing check (the first runs at
once); ``healthy`` turns ``unhealthy`` after ``unhealthy_threshold`` failures in a
row (so does ``initial``), and back after ``healthy_threshold`` passes.
``on_transition`` hears of every change of state.

Which targets get requests (`routable_addresses`): the healthy targets of a group;
if there are none but some are unhealthy, every registered target that is not
draining (ALB fails open); none while all are still ``initial``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from fargo.local.clock import TwinClock
from fargo.local.ec2.hostport import host_port
from fargo.local.ec2.network import SocketFactory
from fargo.local.events import about
from fargo.local.loops import keep_running
from fargo.spec.elb import HealthCheck

if TYPE_CHECKING:
    # loaded when checks start: the CLI reads this module's states (`fargo.local.status`)
    # without it, and `fargo up --detach` forks before loading it
    import aiohttp

logger = logging.getLogger(__name__)

HEALTH_CHECK_USER_AGENT = "ELB-HealthChecker/2.0"
# A scaled timeout is never shorter than this (or the spec's timeout, if shorter): a
# target busy under load must not fail its checks only because the clock runs faster.
MINIMUM_SCALED_TIMEOUT_SECONDS = 2.0

# (reason, description) of a failed check, as ALB reports them.
Failure = tuple[str, str]


class TargetState(StrEnum):
    """ELBv2 ``TargetHealth.State``."""

    INITIAL = "initial"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    DRAINING = "draining"


@dataclass(frozen=True)
class Target:
    """An ``ip`` target: a task's address and container port."""

    id: str
    ip: str
    port: int

    @property
    def address(self) -> str:
        return host_port(self.ip, self.port)


@dataclass(frozen=True)
class TargetHealthDescription:
    """One entry of ``DescribeTargetHealth``."""

    target: Target
    state: TargetState
    reason: str | None
    description: str | None


@dataclass(eq=False)
class TargetRegistration:
    """A target registered in a target group, with its health as the checks found it."""

    target: Target
    state: TargetState = TargetState.INITIAL
    reason: str | None = "Elb.InitialHealthChecking"
    description: str | None = "Initial health checks in progress"
    passes: int = 0
    failures: int = 0

    def describe(self) -> TargetHealthDescription:
        return TargetHealthDescription(self.target, self.state, self.reason, self.description)

    def deregister(self) -> None:
        """``DeregisterTargets``: the target is draining (its checks must be stopped)."""
        self.state = TargetState.DRAINING
        self.reason = "Target.DeregistrationInProgress"
        self.description = "Target deregistration is in progress"

    def record(self, check: HealthCheck, failure: Failure | None) -> bool:
        """Count one check's result (None: passed); whether the state changed."""
        if self.state is TargetState.DRAINING:
            return False
        before = self.state
        if failure is None:
            self.failures = 0
            self.passes += 1
            if before is TargetState.INITIAL or (
                before is TargetState.UNHEALTHY and self.passes >= check.healthy_threshold
            ):
                self.state = TargetState.HEALTHY
                self.reason = self.description = None
        else:
            self.passes = 0
            self.failures += 1
            if before is TargetState.UNHEALTHY or self.failures >= check.unhealthy_threshold:
                self.state = TargetState.UNHEALTHY
                self.reason, self.description = failure
        return self.state is not before


def routable_addresses(registrations: Iterable[TargetRegistration]) -> list[str]:
    """Addresses that get new requests: the healthy targets, else (fail open) all."""
    active = [r for r in registrations if r.state is not TargetState.DRAINING]
    chosen = [r for r in active if r.state is TargetState.HEALTHY]
    if not chosen and any(r.state is TargetState.UNHEALTHY for r in active):
        chosen = active
    return list(dict.fromkeys(r.target.address for r in chosen))


def check_timeout(check: HealthCheck, clock: TwinClock) -> float:
    """The seconds one check may take: ``timeout`` on the scaled clock, within limits.

    ``min(max(timeout × scale, min(timeout, 2 s)), interval × scale)``: the scaled
    timeout, raised to 2 s (or to the spec's own timeout when that is shorter) so a
    loaded machine does not fail healthy targets, and capped at the scaled interval so
    a check never runs past the time the next one is due. At ``time_scale`` 1 this is
    the spec's timeout (which the spec keeps below its interval). Reference defaults
    at 0.1: interval 30 s → 3 s, timeout 5 s → 2 s.
    """
    scaled = clock.timeout(check.timeout, floor=MINIMUM_SCALED_TIMEOUT_SECONDS)
    return min(scaled, clock.interval(check.interval))


OnTransition = Callable[[str, TargetRegistration], None]


class HealthChecker:
    """The control plane's health checks: one task per registered target, on the event loop."""

    def __init__(
        self,
        *,
        clock: TwinClock,
        on_transition: OnTransition,
        socket_factory: SocketFactory | None = None,
    ) -> None:
        self.clock = clock
        self.socket_factory = socket_factory
        self.on_transition = on_transition
        self._session: aiohttp.ClientSession | None = None
        self._checks: dict[TargetRegistration, asyncio.Task[None]] = {}

    def start(self) -> None:
        """Open the HTTP client the checks use (each check on a fresh connection)."""
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    force_close=True, limit=0, socket_factory=self.socket_factory
                ),
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
            )

    async def stop(self) -> None:
        """Stop every target's checks and close the client; idempotent."""
        checks, self._checks = list(self._checks.values()), {}
        for task in checks:
            task.cancel()
        for task in checks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def start_checks(
        self, target_group: str, registration: TargetRegistration, check: HealthCheck
    ) -> None:
        """Check ``registration``'s target now and then every (scaled) interval."""
        self._checks[registration] = keep_running(
            f"health checks of {registration.target.id} in {target_group}",
            lambda: self._check_forever(target_group, registration, check),
            extra=about("target-group", target_group),
        )

    def stop_checks(self, registration: TargetRegistration) -> None:
        task = self._checks.pop(registration, None)
        if task is not None:
            task.cancel()

    async def _check_forever(
        self, target_group: str, registration: TargetRegistration, check: HealthCheck
    ) -> None:
        interval = self.clock.interval(check.interval)
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            failure = await self._check(registration.target, check)
            before = registration.state
            if registration.record(check, failure):
                logger.info(
                    "target %s (%s): %s -> %s%s",
                    registration.target.id,
                    registration.target.address,
                    before.value,
                    registration.state.value,
                    f" ({registration.reason}: {registration.description})"
                    if registration.reason
                    else "",
                    extra=about("target-group", target_group),
                )
                self.on_transition(target_group, registration)
            await asyncio.sleep(max(0.0, interval - (loop.time() - started)))

    async def _check(self, target: Target, check: HealthCheck) -> Failure | None:
        """None if the target passes, else (reason, description) as ALB reports them."""
        import aiohttp

        assert self._session is not None
        url = f"http://{target.address}{check.path}"
        try:
            async with self._session.get(
                url,
                allow_redirects=False,
                headers={"User-Agent": HEALTH_CHECK_USER_AGENT},
                timeout=aiohttp.ClientTimeout(total=check_timeout(check, self.clock)),
            ) as response:
                status = response.status
        except TimeoutError:
            return "Target.Timeout", "Request timed out"
        except (aiohttp.ClientError, OSError):
            return "Target.FailedHealthChecks", "Health checks failed"
        if check.matches(status):
            return None
        return "Target.ResponseCodeMismatch", f"Health checks failed with these codes: [{status}]"
