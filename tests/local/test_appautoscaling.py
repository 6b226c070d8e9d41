"""Application Auto Scaling in the twin: target tracking's decisions on datapoints, and a
service's CPUUtilization measured from real processes."""

from __future__ import annotations

import collections
import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from fargo.local.appautoscaling.metrics import ServiceMeter
from fargo.local.appautoscaling.policy import Decision, TargetTracking, combine

CPU = TargetTracking("CPUUtilization", 70, scale_out_cooldown=300, scale_in_cooldown=300)


def decide(points: list[float | None], capacity: int = 2, **times: float | None) -> Decision | None:
    return CPU.decide(
        points,
        capacity=capacity,
        bounds=(2, 4),
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
