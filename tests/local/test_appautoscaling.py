"""Application Auto Scaling in the twin: target tracking's decisions on datapoints, a
service's CPUUtilization measured from real processes, and a target group's
ALBRequestCountPerTarget from the load balancers' request counts."""

from __future__ import annotations

import asyncio
import collections
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import psutil
import pytest
from tests.waiting import until

from fargo.local.appautoscaling import scaler as scaler_module
from fargo.local.appautoscaling.metrics import Datapoint, ServiceMeter
from fargo.local.appautoscaling.policy import REQUESTS, Decision, TargetTracking, combine
from fargo.local.appautoscaling.requests import RequestCountPerTarget
from fargo.local.appautoscaling.scaler import ApplicationAutoScaling
from fargo.local.clock import TwinClock
from fargo.local.cloudwatch.elb_metrics import NAMESPACE
from fargo.local.cloudwatch.store import Metric, MetricStore
from fargo.local.elb.target_health import TargetState
from fargo.spec import Spec, load_spec

ROOT = Path(__file__).resolve().parents[2]
CPU = TargetTracking("CPUUtilization", 70, scale_out_cooldown=300, scale_in_cooldown=300)


def decide(
    points: list[float | None],
    capacity: int = 2,
    *,
    policy: TargetTracking = CPU,
    bounds: tuple[int, int] = (2, 4),
    **times: float | None,
) -> Decision | None:
    return policy.decide(
        points,
        capacity=capacity,
        bounds=bounds,
        since_out=times.get("since_out"),
        since_in=times.get("since_in"),
    )


def test_three_datapoints_above_the_target_scale_out_in_proportion() -> None:
    kept = collections.deque([50.0, 80.0, 86.0, 91.0], maxlen=15)  # as the scaler keeps them
    assert CPU.decide(kept, capacity=2, bounds=(2, 4), since_out=None, since_in=None) == Decision(
        3, "CPUUtilization 91 % > 70 % target for 3 datapoints"
    )
    assert decide([50, 80, 86, 91]) == Decision(
        3, "CPUUtilization 91 % > 70 % target for 3 datapoints"
    )
    assert decide([150, 150, 150]) == Decision(  # 2 × 150/70 = 4.3 → the maximum
        4, "CPUUtilization 150 % > 70 % target for 3 datapoints"
    )


@pytest.mark.parametrize(
    "points",
    [[80, 86], [80, 60, 91], [80, None, 91], [70, 70, 70]],  # too few, broken, missing, equal
)
def test_anything_short_of_three_high_datapoints_does_nothing(points: list[float | None]) -> None:
    assert decide(points) is None


def test_a_scale_out_waits_out_its_cooldown_and_the_maximum() -> None:
    assert decide([90, 90, 90], since_out=100) is None
    assert decide([90, 90, 90], since_out=301) is not None
    assert decide([90, 90, 90], capacity=4) is None


def test_fifteen_datapoints_below_ninety_percent_of_the_target_scale_in() -> None:
    quiet: list[float | None] = [10.0] * 15
    assert decide(quiet, capacity=4) == Decision(
        2, "CPUUtilization 10 % < 63 % (90% of the 70 % target) for 15 datapoints"
    )
    assert decide(quiet[:14], capacity=4) is None
    assert decide([*quiet[:14], 65.0], capacity=4) is None  # above 63 %
    assert decide(quiet, capacity=2) is None  # the minimum
    assert decide(quiet, capacity=4, since_in=100) is None
    assert decide(quiet, capacity=4, since_out=100) is None


def test_policies_together_scale_out_on_either_and_in_only_on_both() -> None:
    out, inward = Decision(3, "cpu"), Decision(1, "memory")
    assert combine([out, None], 2, 2) == out
    assert combine([None, inward], 2, 2) is None
    assert combine([Decision(1, "cpu"), Decision(1, "memory")], 2, 2) == Decision(1, "cpu")


@pytest.fixture
def spinning() -> Iterator[int]:
    process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield process.pid
    finally:
        process.kill()
        process.wait()


def test_cpu_utilization_is_use_over_reservation(spinning: int) -> None:
    meter = ServiceMeter(cpu_units=256, memory_mib=512)  # a quarter of a vCPU
    first = meter.measure({"t1": spinning}, now=time.monotonic())
    assert first.cpu is None and first.memory is not None and first.memory > 0
    time.sleep(0.5)
    second = meter.measure({"t1": spinning}, now=time.monotonic())
    assert second.cpu is not None and second.cpu > 100  # more than its quarter of a core
    rss = psutil.Process(spinning).memory_info().rss
    assert second.memory == pytest.approx(rss / 2**29 * 100, rel=0.2)


# -- ALBRequestCountPerTarget ----------------------------------------------------------------

REQUEST_COUNT = TargetTracking(
    REQUESTS,
    1000,
    scale_out_cooldown=300,
    scale_in_cooldown=300,
    target_group="api",
)


def decide_requests(
    points: list[float | None], capacity: int = 2, **times: float | None
) -> Decision | None:
    return decide(points, capacity, policy=REQUEST_COUNT, bounds=(1, 4), **times)


def test_requests_per_target_above_the_target_for_three_datapoints_scale_out() -> None:
    assert decide_requests([900, 1100, 1150, 1200]) == Decision(  # 2 × 1.2 = 2.4 → 3
        3, "ALBRequestCountPerTarget 1,200 > 1,000 target for 3 datapoints"
    )
    assert decide_requests([2500, 2500, 2500]) == Decision(  # 2 × 2.5 = 5 → the maximum
        4, "ALBRequestCountPerTarget 2,500 > 1,000 target for 3 datapoints"
    )
    assert decide_requests([1100, 1200]) is None  # two datapoints
    assert decide_requests([1100, 800, 1200]) is None  # a run broken
    assert decide_requests([1100, None, 1200]) is None  # a period without targets
    assert decide_requests([1000, 1000, 1000]) is None  # at the target is not above it
    assert decide_requests([1200] * 3, capacity=4) is None  # at the maximum


def test_a_request_count_scale_out_waits_out_its_cooldown() -> None:
    assert decide_requests([1200] * 3, since_out=299) is None
    assert decide_requests([1200] * 3, since_out=301) == Decision(
        3, "ALBRequestCountPerTarget 1,200 > 1,000 target for 3 datapoints"
    )


def test_requests_per_target_below_ninety_percent_for_fifteen_datapoints_scale_in() -> None:
    quiet: list[float | None] = [300.0] * 15
    assert decide_requests(quiet, capacity=4) == Decision(  # 4 × 0.3 = 1.2 → 2
        2, "ALBRequestCountPerTarget 300 < 900 (90% of the 1,000 target) for 15 datapoints"
    )
    assert decide_requests([40.0] * 15, capacity=4) == Decision(  # 4 × 0.04 → the minimum, 1
        1, "ALBRequestCountPerTarget 40 < 900 (90% of the 1,000 target) for 15 datapoints"
    )
    assert decide_requests(quiet[:14], capacity=4) is None  # fourteen
    assert decide_requests([*quiet[:14], 950.0], capacity=4) is None  # above 900 at the end
    assert decide_requests(quiet, capacity=1) is None  # the minimum
    assert decide_requests(quiet, capacity=4, since_in=299) is None  # scale-in cooldown
    assert decide_requests(quiet, capacity=4, since_out=299) is None  # scale-out cooldown
    assert decide_requests(quiet, capacity=4, since_in=301, since_out=301) is not None


def test_an_odd_target_shows_its_threshold_to_a_tenth() -> None:
    odd = TargetTracking(REQUESTS, 1001)
    decision = odd.decide([10.0] * 15, capacity=2, bounds=(1, 2), since_out=None, since_in=None)
    assert decision == Decision(
        1, "ALBRequestCountPerTarget 10 < 900.9 (90% of the 1,001 target) for 15 datapoints"
    )


PERIOD = 6.0  # the default time scale's minute: a period's count × 10 is a minute's
START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def period(index: int) -> datetime:
    return datetime.fromtimestamp(START.timestamp() + index * PERIOD, UTC)


def put(store: MetricStore, name: str, lb: str, group: str, index: int, value: float) -> None:
    statistic = "Sum" if name == "RequestCount" else "Average"
    dimensions = {"LoadBalancer": lb, "TargetGroup": group}
    store.put(Metric.of(NAMESPACE, name, dimensions, statistic, "Count"), period(index), value)


def test_request_count_per_target_is_a_periods_requests_over_its_targets_a_minute() -> None:
    store = MetricStore(period_seconds=PERIOD, keep_seconds=300)
    registered = {"api": 3}
    requests = RequestCountPerTarget("api", metrics=store, registered=registered.__getitem__)
    put(store, "RequestCount", "public", "api", 0, 100)  # two load balancers forward to it
    put(store, "RequestCount", "internal", "api", 0, 20)
    put(store, "HealthyHostCount", "public", "api", 0, 2)
    put(store, "HealthyHostCount", "internal", "api", 0, 2)
    put(store, "RequestCount", "public", "web", 0, 5000)  # another group's
    put(store, "RequestCount", "public", "api", 1, 60)  # no healthy target: the registered
    put(store, "HealthyHostCount", "public", "api", 1, 0)

    assert requests.take() == [pytest.approx(120 / 2 * 10), pytest.approx(60 / 3 * 10)]
    assert requests.take() == []  # each period once

    put(store, "RequestCount", "public", "api", 2, 30)
    registered["api"] = 0  # nothing to divide by: a missing datapoint
    assert requests.take() == [None]


@dataclass
class FakeScheduler:
    desired_count: int
    deploying: bool = False
    events: list[str] = field(default_factory=list)

    def event(self, message: str) -> None:
        self.events.append(message)

    def wake(self) -> None:
        pass

    def active(self) -> list[Any]:
        return []


def scaled_on_requests(**autoscaling: Any) -> tuple[ApplicationAutoScaling, FakeScheduler]:
    """The reference system's backend-private-with-alb (2–4 tasks, one target group) with
    ``autoscaling`` changed, under a scaler on a fake cluster."""
    spec: Spec = load_spec(ROOT / "fargo.yaml").model_copy(deep=True)
    service = spec.services["backend-private-with-alb"]
    assert service.autoscaling is not None
    service.autoscaling = service.autoscaling.model_copy(update=autoscaling)
    scheduler = FakeScheduler(desired_count=2)
    cluster = SimpleNamespace(services={"backend-private-with-alb": scheduler})
    elb = SimpleNamespace(
        describe_target_health=lambda group: [
            SimpleNamespace(state=TargetState.HEALTHY),
            SimpleNamespace(state=TargetState.DRAINING),
        ]
    )
    scaler = ApplicationAutoScaling(
        spec,
        cast(Any, cluster),
        TwinClock(0.1),
        metrics=MetricStore(period_seconds=PERIOD, keep_seconds=300),
        elb=cast(Any, elb),
    )
    return scaler, scheduler


QUIET = Datapoint(cpu=5.0, memory=10.0)


def test_the_scaler_scales_out_on_requests_and_says_why_in_the_services_events() -> None:
    scaler, scheduler = scaled_on_requests(
        target_requests_per_target=1000, target_cpu_utilization=None
    )
    target = scaler.targets["backend-private-with-alb"]
    [policy] = target.policies
    assert (policy.metric, policy.target, policy.target_group) == (
        "ALBRequestCountPerTarget",
        1000,
        "backend-private-with-alb",
    )
    assert target.requests is not None and target.requests.registered("any") == 1  # not draining

    scaler.evaluate(target, QUIET, 100.0, requests=[1100, 1150])
    assert scheduler.desired_count == 2
    scaler.evaluate(target, QUIET, 106.0, requests=[1200])

    reason = "ALBRequestCountPerTarget 1,200 > 1,000 target for 3 datapoints"
    assert scheduler.desired_count == 3
    assert scheduler.events == [f"Application Auto Scaling: {reason}: 2 → 3 tasks"]
    [activity] = scaler.activities
    assert (activity.cause, activity.description) == (reason, "2 → 3 tasks")

    scaler.evaluate(target, QUIET, 112.0, requests=[3000])  # within the 30 s cooldown
    assert scheduler.desired_count == 3


def test_with_cpu_and_requests_a_scale_in_needs_both_low() -> None:
    scaler, scheduler = scaled_on_requests(target_requests_per_target=1000)
    target = scaler.targets["backend-private-with-alb"]
    scheduler.desired_count = 4
    for second in range(15):  # CPU quiet, requests busy: no scale-in
        scaler.evaluate(target, QUIET, float(second), requests=[950])
    assert scheduler.desired_count == 4
    for second in range(15, 30):  # both quiet
        scaler.evaluate(target, QUIET, float(second), requests=[600])
    # CPU wants the minimum (2), requests 4 × 0.6 = 2.4 → 3 tasks: the larger
    assert scheduler.desired_count == 3
    assert scheduler.events == [
        "Application Auto Scaling: ALBRequestCountPerTarget 600 < 900 (90% of the 1,000 "
        "target) for 15 datapoints: 4 → 3 tasks"
    ]


def reference_autoscaled(spec: Spec | None = None, **update: Any) -> Spec:
    """``spec`` (a copy of the reference system's) with backend-private-with-alb's
    autoscaling settings updated."""
    spec = spec or load_spec(ROOT / "fargo.yaml").model_copy(deep=True)
    service = spec.services["backend-private-with-alb"]
    assert service.autoscaling is not None
    service.autoscaling = service.autoscaling.model_copy(update=update)
    return spec


async def test_a_spec_applied_to_the_running_twin_reaches_the_scaler() -> None:
    """`fargo up` on a running twin: a service's new autoscaling settings make its scalable
    target anew, its desired count within the new bounds; unchanged settings keep the
    target (its datapoints, its cooldowns); a service no longer autoscaled has none."""
    scaler, scheduler = scaled_on_requests(target_requests_per_target=1000)
    await scaler.start()
    try:
        target = scaler.targets["backend-private-with-alb"]
        target.datapoints["CPUUtilization"].append(50.0)
        spec = reference_autoscaled(target_requests_per_target=1000)
        scaler.reconfigure(spec)
        assert scaler.targets["backend-private-with-alb"] is target  # unchanged
        scaler.reconfigure(
            reference_autoscaled(spec, min_capacity=3, target_requests_per_target=500)
        )
        changed = scaler.targets["backend-private-with-alb"]
        assert changed is not target and changed.bounds == (3, 4)
        assert [p.target for p in changed.policies] == [70, 500]
        assert scheduler.desired_count == 3  # brought within the new bounds, and said so
        assert scheduler.events[-1].startswith("Application Auto Scaling: desired count 2")
        spec.services["backend-private-with-alb"].autoscaling = None
        scaler.reconfigure(spec)
        assert scaler.targets == {}
    finally:
        await scaler.stop()


async def test_a_target_made_anew_while_it_was_measured_is_not_evaluated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A spec applied while the loop measured a service (off the event loop) replaces its
    scalable target: the old one, with its old bounds, decides nothing."""
    monkeypatch.setattr(scaler_module, "period_seconds", lambda clock: 0.01)
    scaler, _ = scaled_on_requests(target_requests_per_target=1000)
    old = scaler.targets["backend-private-with-alb"]
    measuring, release = threading.Event(), threading.Event()

    def measure(running: object, *, now: float) -> Datapoint:
        measuring.set()
        release.wait(5)
        return Datapoint(cpu=99.0, memory=10.0)

    old.meter = cast(Any, SimpleNamespace(measure=measure))
    evaluated: list[Any] = []
    monkeypatch.setattr(scaler, "evaluate", lambda target, *_, **__: evaluated.append(target))
    await scaler.start()
    try:
        assert await asyncio.to_thread(measuring.wait, 5)
        scaler.reconfigure(reference_autoscaled(target_requests_per_target=500))
        release.set()
        await until(lambda: len(evaluated) >= 2, timeout=5)
        assert old not in evaluated
        assert {id(t) for t in evaluated} == {id(scaler.targets["backend-private-with-alb"])}
    finally:
        release.set()
        await scaler.stop()
