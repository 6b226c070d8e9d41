"""Rolling deployments with real tasks: min/max percent, the circuit breaker, the lock."""

from __future__ import annotations

import asyncio

import pytest
from tests.local.test_ecs import Harness, HarnessFactory, make_harness_fixture  # noqa: F401

from fargo.local.ecs.deployment import failure_threshold, rolling_deployment
from fargo.local.ecs.task import TaskStatus


async def running(h: Harness, count: int) -> Harness:
    await h.cluster.start()
    await h.until(lambda: len(h.scheduler.in_service()) == count)
    return h


def watch_bounds(h: Harness) -> dict[str, int]:
    """Record the most tasks active and the fewest in service at any change."""
    seen = {"max_active": 0, "min_in_service": len(h.scheduler.in_service())}

    def observe() -> None:
        seen["max_active"] = max(seen["max_active"], len(h.scheduler.active()))
        seen["min_in_service"] = min(seen["min_in_service"], len(h.scheduler.in_service()))

    h.observers.append(observe)
    return seen


@pytest.mark.parametrize(
    ("percents", "max_active", "min_in_service"),
    [("min_healthy_percent: 100, max_percent: 200", 4, 2),
     ("min_healthy_percent: 50, max_percent: 100", 2, 1)],
)  # fmt: skip
async def test_a_deployment_stays_within_minimum_healthy_and_maximum_percent(
    make_harness: HarnessFactory, percents: str, max_active: int, min_in_service: int
) -> None:
    h = await running(await make_harness(f"desired_count: 2, {percents}"), 2)
    old = {t.id for t in h.scheduler.tasks}
    seen = watch_bounds(h)
    image = h.push("serve ")  # same behaviour, new digest

    assert await rolling_deployment(h.scheduler, image)

    assert seen["max_active"] == max_active and seen["min_in_service"] == min_in_service, seen
    tasks = h.scheduler.in_service()
    assert len(tasks) == 2 and not {t.id for t in tasks} & old
    assert {t.image.digest for t in tasks} == {image.digest} and h.scheduler.image == image
    assert h.scheduler.revision == 2 and {t.revision for t in tasks} == {2}


async def test_the_circuit_breaker_rolls_back_after_the_threshold_of_failed_tasks(
    make_harness: HarnessFactory,
) -> None:
    h = await running(await make_harness("desired_count: 2"), 2)
    before = h.scheduler.image
    old = {t.id for t in h.scheduler.tasks}
    broken = h.push("crash")

    assert not await rolling_deployment(h.scheduler, broken)

    failed = [t for t in h.cluster.stopped_tasks if t.image == broken]
    assert len(failed) == failure_threshold(2) == 3  # failed tasks were replaced up to it
    assert all(t.exit_code == 3 for t in failed)
    assert h.scheduler.image == before and h.scheduler.revision == 1
    assert {t.id for t in h.scheduler.in_service()} == old  # the old revision kept serving
    assert h.scheduler.describe().failure is None
    assert any("circuit breaker" in e for e in h.scheduler.events)


async def test_concurrent_deployments_of_a_service_run_one_after_the_other(
    make_harness: HarnessFactory,
) -> None:
    h = await running(await make_harness("desired_count: 1"), 1)
    seen = watch_bounds(h)
    first, second = h.push("serve "), h.push("serve  ")

    results = await asyncio.gather(
        rolling_deployment(h.scheduler, first), rolling_deployment(h.scheduler, second)
    )

    assert list(results) == [True, True] and h.scheduler.revision == 3
    assert seen["max_active"] == 2  # never two deployments' new tasks at once
    events = [e.split(") ", 1)[1] for e in h.scheduler.events if "deployment of" in e]
    assert [e.split(" (")[0] for e in events] == [
        "deployment of revision 2",
        "deployment of revision 2 completed",
        "deployment of revision 3",
        "deployment of revision 3 completed",
    ]
    assert [t.image for t in h.scheduler.tasks] == [second]


async def test_a_deployment_that_misses_its_deadline_rolls_back(
    make_harness: HarnessFactory,
) -> None:
    h = await running(await make_harness("desired_count: 1"), 1)
    old = list(h.scheduler.tasks)
    silent = h.push("silent")

    assert not await rolling_deployment(h.scheduler, silent, timeout=0.5)

    assert h.scheduler.tasks == old and h.scheduler.revision == 1
    assert all(t.desired_status is TaskStatus.STOPPED for t in h.cluster.stopped_tasks)
    assert any("did not complete within 0.5 s" in e for e in h.scheduler.events)


def test_circuit_breaker_threshold_is_half_the_desired_count_within_3_and_200() -> None:
    assert [failure_threshold(n) for n in (0, 1, 6, 7, 10, 400, 1000)] == [
        3, 3, 3, 4, 5, 200, 200,
    ]  # fmt: skip
