"""Several Caddy data planes behind the one `LoadBalancerDataPlane` seam.

    fleet = CaddyFleet({"public": public_plane, "internal": internal_plane})
    elb = ElasticLoadBalancing(spec, data_plane=fleet, ...)

VPC mode runs one Caddy per load balancer, each inside that load balancer's ENI, as
ALBs are separate: a request to the internal one leaves from the internal one's
address and meets the targets' security groups as such. The control plane still
talks to one data plane: an update goes to every member, a version is applied when
every member has applied it, and a target is drained when no member has a request
in flight to it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from fargo.local.caddy.data_plane import CaddyDataPlane
from fargo.local.elb.target_health import Target
from fargo.local.parts import Parts
from fargo.local.status import DataPlaneStatus
from fargo.spec.model import Spec


class CaddyFleet:
    """One `CaddyDataPlane` per load balancer, as one data plane."""

    name = "load balancer data planes (one Caddy per load balancer)"

    def __init__(self, members: Mapping[str, CaddyDataPlane]) -> None:
        if not members:
            raise ValueError("a fleet needs at least one data plane")
        self.members = dict(members)
        self._parts = Parts(list(self.members.values()))
        self._version = 0
        self._member_versions: dict[int, dict[str, int]] = {}

    @property
    def settle_seconds(self) -> float:
        return max(m.settle_seconds for m in self.members.values())

    @property
    def up_to_date(self) -> bool:
        return all(m.up_to_date for m in self.members.values())

    def validate(self) -> list[str]:
        return [p for m in self.members.values() for p in m.validate()]

    async def start(self) -> None:
        await self._parts.start(together=True)

    async def stop(self) -> None:
        await self._parts.stop()

    def adopt_listeners(self, folders: Mapping[str, Path]) -> bool:
        """Stand by on the listeners of the Caddys a killed control plane left in another
        network: load balancer name → that Caddy's folder (`CaddyDataPlane.adopt_listeners`).
        False, with nothing adopted, unless every one is this spec's."""
        for name, folder in folders.items():
            member = self.members.get(name)
            if member is None or not member.adopt_listeners(folder):
                self.disown()
                return False
        return True

    def disown(self) -> None:
        for member in self.members.values():
            member.disown()

    async def take_traffic(self) -> None:
        """New connections to adopted listeners come to this fleet's Caddys from now on."""
        await asyncio.gather(*(m.take_traffic() for m in self.members.values()))

    def stop_restarting(self) -> None:
        for member in self.members.values():
            member.stop_restarting()

    def reconfigure_problems(self, spec: Spec) -> list[str]:
        return [
            p
            for n, m in self.members.items()
            for p in m.reconfigure_problems(spec.only_load_balancer(n))
        ]

    def reconfigure(self, spec: Spec) -> None:
        for name, member in self.members.items():
            member.reconfigure(spec.only_load_balancer(name))

    def update(
        self, routable: Mapping[str, Sequence[str]], targets: Mapping[str, Sequence[Target]]
    ) -> int:
        self._version += 1
        self._member_versions = {
            self._version: {n: m.update(routable, targets) for n, m in self.members.items()}
        }
        return self._version

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate`` holds, tested whenever any member applies an update."""
        if predicate():
            return
        waiters = [asyncio.ensure_future(m.wait_for(predicate)) for m in self.members.values()]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            for waiter in waiters:
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter

    async def wait_pushed(self, version: int, deadline: float) -> None:
        versions = self._member_versions.get(version)
        if versions is None:  # superseded by a later update, which includes it
            versions = {n: m_version for n, m_version in self._latest().items()}
        await asyncio.gather(
            *(self.members[n].wait_pushed(v, deadline) for n, v in versions.items())
        )

    async def drained(self, addresses: set[str], deadline: float) -> None:
        await asyncio.gather(*(m.drained(addresses, deadline) for m in self.members.values()))

    def describe(self) -> list[DataPlaneStatus]:
        return [m.status() for m in self.members.values()]

    def _latest(self) -> dict[str, int]:
        return next(iter(self._member_versions.values()), {})
