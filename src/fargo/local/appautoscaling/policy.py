"""Target tracking, as Application Auto Scaling runs it for an ECS service.

    policy = TargetTracking("CPUUtilization", target=70)
    policy.decide(datapoints=[80, 86, 91], capacity=2, bounds=(2, 4), since_out=None, since_in=None)
    # Decision(desired=3, reason="CPUUtilization 91 % > 70 % target for 3 datapoints")
    TargetTracking(REQUESTS, 1000, target_group="api")   # requests a minute
    # ... reason="ALBRequestCountPerTarget 1,200 > 1,000 target for 3 datapoints"

The policy's two CloudWatch alarms, as AWS creates them for a one-minute metric: the high
alarm fires after `HIGH_DATAPOINTS` datapoints above the target, the low one after
`LOW_DATAPOINTS` below `LOW_FRACTION` of it. The new capacity is proportional: the
current one times the last datapoint over the target, rounded up (out) — never outside
the scalable target's bounds. A scale-out waits out the scale-out cooldown since the last
scale-out; a scale-in waits out the scale-in cooldown since the last scaling activity,
and every scale-out cooldown. A missing datapoint (no task to measure) breaks a run. The
same holds for every metric: a service's CPUUtilization and MemoryUtilization (percent),
and its target group's ALBRequestCountPerTarget (requests a target takes a minute).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

HIGH_DATAPOINTS = 3
LOW_DATAPOINTS = 15
LOW_FRACTION = 0.9
# ECS services' defaults when a target tracking policy sets no cooldown (seconds).
SCALE_OUT_COOLDOWN_SECONDS = 300.0
SCALE_IN_COOLDOWN_SECONDS = 300.0

CPU = "CPUUtilization"
MEMORY = "MemoryUtilization"
REQUESTS = "ALBRequestCountPerTarget"
# Application Auto Scaling's PredefinedMetricType for each metric a policy tracks.
PREDEFINED_METRIC_TYPES = {
    CPU: "ECSServiceAverageCPUUtilization",
    MEMORY: "ECSServiceAverageMemoryUtilization",
    REQUESTS: "ALBRequestCountPerTarget",
}


@dataclass(frozen=True)
class Decision:
    desired: int
    reason: str


@dataclass(frozen=True)
class TargetTracking:
    metric: str  # CPU, MEMORY or REQUESTS
    target: float  # in the metric's unit
    scale_out_cooldown: float = SCALE_OUT_COOLDOWN_SECONDS  # on the clock the caller uses
    scale_in_cooldown: float = SCALE_IN_COOLDOWN_SECONDS
    target_group: str | None = None  # the group whose requests REQUESTS counts

    def decide(
        self,
        datapoints: Sequence[float | None],
        *,
        capacity: int,
        bounds: tuple[int, int],
        since_out: float | None,
        since_in: float | None,
    ) -> Decision | None:
        """What to scale to, given the datapoints (oldest first) and the time since the last
        scale-out and scale-in (None: never); None when the policy does nothing."""
        low, high = bounds
        if capacity <= 0:
            return None
        points = list(datapoints)  # a deque does not slice
        recent = points[-HIGH_DATAPOINTS:]
        if len(recent) == HIGH_DATAPOINTS and all(
            v is not None and v > self.target for v in recent
        ):
            last = recent[-1]
            assert last is not None
            desired = min(high, max(capacity + 1, math.ceil(capacity * last / self.target)))
            cooling = since_out is not None and since_out < self.scale_out_cooldown
            if desired > capacity and not cooling:
                return Decision(
                    desired,
                    f"{self.metric} {self._value(last)} > {self._bound(self.target)} target "
                    f"for {HIGH_DATAPOINTS} datapoints",
                )
            return None
        window = points[-LOW_DATAPOINTS:]
        floor = self.target * LOW_FRACTION
        if len(window) == LOW_DATAPOINTS and all(v is not None and v < floor for v in window):
            last = window[-1]
            assert last is not None
            desired = max(low, min(capacity - 1, math.ceil(capacity * last / self.target)))
            cooling = (since_in is not None and since_in < self.scale_in_cooldown) or (
                since_out is not None and since_out < self.scale_out_cooldown
            )
            if desired < capacity and not cooling:
                return Decision(
                    desired,
                    f"{self.metric} {self._value(last)} < {self._bound(floor)} "
                    f"({LOW_FRACTION:.0%} of the {self._bound(self.target)} target) for "
                    f"{LOW_DATAPOINTS} datapoints",
                )
        return None

    @property
    def percent(self) -> bool:
        """CPU and memory are percent; REQUESTS a count (requests a target takes a minute)."""
        return self.metric != REQUESTS

    def _value(self, value: float) -> str:
        """A datapoint as a reason shows it: ``91 %``, ``1,200``."""
        return f"{value:.0f} %" if self.percent else f"{value:,.0f}"

    def _bound(self, value: float) -> str:
        """A target or threshold: ``70 %``, ``67.5 %``, ``1,000``, ``900.9``."""
        if self.percent:
            return f"{value:g} %"
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def combine(decisions: Sequence[Decision | None], capacity: int, policies: int) -> Decision | None:
    """Several policies on one target: the largest scale-out wins; a scale-in only when every
    policy would scale in (to the largest of their capacities)."""
    out = [d for d in decisions if d is not None and d.desired > capacity]
    if out:
        return max(out, key=lambda d: d.desired)
    ins = [d for d in decisions if d is not None and d.desired < capacity]
    if ins and len(ins) == policies:
        return max(ins, key=lambda d: d.desired)
    return None
