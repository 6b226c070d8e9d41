"""The seam between ALB's control plane and its data plane.

`fargo.local.elb.load_balancing.ElasticLoadBalancing` decides which targets get
requests; a data plane carries the requests. Caddy is one data plane
(`fargo.local.caddy.data_plane.CaddyDataPlane`); nothing in `fargo.local.elb`
imports it, so a data plane can be swapped (or faked in a test) without touching
target health, draining or describe.

    version = data_plane.update(routable={"frontend": ["10.0.10.7:80"]},
                                targets={"frontend": [Target("t1", "10.0.10.7", 80)]})
    await data_plane.wait_pushed(version, deadline)   # the data plane routes by it now
    await data_plane.drained({"10.0.10.7:80"}, deadline)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from fargo.local.elb.target_health import Target
from fargo.local.status import DataPlaneStatus
from fargo.spec.model import Spec


class LoadBalancerDataPlane(Protocol):
    """What the ALB control plane needs from the process that forwards requests."""

    @property
    def name(self) -> str: ...

    @property
    def up_to_date(self) -> bool:
        """Whether the data plane routes by the latest `update`."""
        ...

    @property
    def settle_seconds(self) -> float:
        """How long after an update may requests still go by the previous one."""
        ...

    def validate(self) -> list[str]: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def stop_restarting(self) -> None:
        """The twin is stopping: a proxy that exits from now on stays down (its stop comes
        after the tasks'; a proxy started meanwhile would outlive the twin)."""
        ...

    def reconfigure_problems(self, spec: Spec) -> list[str]:
        """Why the running data plane could not take ``spec``'s listeners (none: it can)."""
        ...

    def reconfigure(self, spec: Spec) -> None:
        """Serve ``spec``'s listeners and rules from the next load on, without a restart."""
        ...

    def update(
        self, routable: Mapping[str, Sequence[str]], targets: Mapping[str, Sequence[Target]]
    ) -> int:
        """Routable ``ip:port`` per target group, and every registered target; a version."""
        ...

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate`` holds, tested after each update is applied and at stop."""
        ...

    async def wait_pushed(self, version: int, deadline: float) -> None:
        """Wait until ``version`` is applied, or the `time.monotonic` ``deadline``."""
        ...

    async def drained(self, addresses: set[str], deadline: float) -> None:
        """Wait until no request is in flight to ``addresses``, or the ``deadline``."""
        ...

    def describe(self) -> list[DataPlaneStatus]:
        """The data plane's processes for ``fargo status`` (pid, restarts, loads)."""
        ...
