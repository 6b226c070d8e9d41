"""The twin's part lifecycle: validate everything first, start in order, stop in reverse."""

from __future__ import annotations

import asyncio

import pytest

from fargo.local.parts import PartFailed, Parts, PartsInvalid, Step, Together


class Recorded:
    def __init__(self, name: str, log: list[str], *, problems: list[str] | None = None,
                 fail_start: bool = False, fail_stop: bool = False) -> None:  # fmt: skip
        self.name = name
        self.log = log
        self.problems = problems or []
        self.fail_start = fail_start
        self.fail_stop = fail_stop

    def validate(self) -> list[str]:
        self.log.append(f"validate {self.name}")
        return self.problems

    async def start(self) -> None:
        self.log.append(f"start {self.name}")
        if self.fail_start:
            raise OSError("port 53 is in use")

    async def stop(self) -> None:
        self.log.append(f"stop {self.name}")
        if self.fail_stop:
            raise RuntimeError("stop failed")


async def test_parts_start_in_order_and_stop_in_reverse() -> None:
    log: list[str] = []
    parts = Parts([Recorded("a", log), Recorded("b", log)])
    await parts.start()
    await parts.stop()
    assert log == ["validate a", "validate b", "start a", "start b", "stop b", "stop a"]
    await parts.stop()  # idempotent: nothing is stopped twice
    assert log.count("stop a") == 1


async def test_every_problem_is_reported_and_nothing_starts() -> None:
    log: list[str] = []
    parts = Parts(
        [Recorded("dns", log, problems=["port 53 is in use"]), Recorded("elb", log, problems=["x"])]
    )
    with pytest.raises(PartsInvalid) as raised:
        await parts.start()
    assert raised.value.problems == ["dns: port 53 is in use", "elb: x"]
    assert not any(line.startswith("start") for line in log)


async def test_a_failed_start_stops_what_started_including_the_failed_part() -> None:
    log: list[str] = []
    parts = Parts([Recorded("a", log), Recorded("b", log, fail_start=True), Recorded("c", log)])
    with pytest.raises(PartFailed, match=r"^b: port 53 is in use$"):
        await parts.start()
    assert log[-2:] == ["stop b", "stop a"]
    assert "start c" not in log


async def test_parts_started_together_overlap_and_a_failure_stops_them_all() -> None:
    log: list[str] = []
    both_started = asyncio.Event()

    class Waits(Recorded):
        async def start(self) -> None:  # returns only once the other one has started
            await super().start()
            if "start b" not in self.log:
                await asyncio.wait_for(both_started.wait(), 1)
            both_started.set()

    parts = Parts([Waits("a", log), Waits("b", log)])
    await parts.start(together=True)
    await parts.stop()
    assert log[2:] == ["start a", "start b", "stop b", "stop a"]

    log.clear()
    failing = Parts([Recorded("a", log), Recorded("b", log, fail_start=True)])
    with pytest.raises(PartFailed, match=r"^b: port 53 is in use$"):
        await failing.start(together=True)
    assert log[-2:] == ["stop b", "stop a"]


async def test_a_stop_that_fails_does_not_keep_the_others_up() -> None:
    log: list[str] = []
    parts = Parts([Recorded("a", log), Recorded("b", log, fail_stop=True), Recorded("c", log)])
    await parts.start()
    await parts.stop()
    assert log[-3:] == ["stop c", "stop b", "stop a"]


async def test_a_slow_stop_is_named_while_it_runs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("fargo.local.parts.SLOW_STOP_SECONDS", 0.05)
    parts = Parts([Step("draining tasks", start=lambda: None, stop=lambda: asyncio.sleep(0.3))])
    await parts.start()
    with caplog.at_level("WARNING", logger="fargo.local.parts"):
        await parts.stop()
    said = [r.getMessage() for r in caplog.records]
    assert said[0] == "still stopping draining tasks" and 3 <= len(said) <= 6, said


async def test_a_step_runs_plain_and_async_actions() -> None:
    log: list[str] = []

    async def stop() -> None:
        log.append("stopped")

    parts = Parts([Step("namespace", start=lambda: log.append("created"), stop=stop)])
    await parts.start()
    await parts.stop()
    assert log == ["created", "stopped"]


async def test_a_together_part_overlaps_its_members_and_names_them_in_problems() -> None:
    log: list[str] = []
    started = asyncio.Event()

    class First(Recorded):
        async def start(self) -> None:  # returns only once the second member has started
            await super().start()
            await asyncio.wait_for(started.wait(), 1)

    class Second(Recorded):
        async def start(self) -> None:
            await super().start()
            started.set()

    group = Together("dns and load balancers", [First("dns", log), Second("elb", log)])
    parts = Parts([Recorded("a", log), group, Recorded("z", log)])
    await parts.start()
    await parts.stop()
    starts = [line for line in log if line.startswith("start")]
    assert starts == ["start a", "start dns", "start elb", "start z"]
    assert log[-4:] == ["stop z", "stop elb", "stop dns", "stop a"]

    invalid = Parts([Together("g", [Recorded("dns", [], problems=["port 53 is in use"])])])
    with pytest.raises(PartsInvalid) as raised:
        await invalid.start()
    assert raised.value.problems == ["dns: port 53 is in use"]


async def test_a_failed_member_of_a_together_part_is_named_and_everything_stops() -> None:
    log: list[str] = []
    group = Together("g", [Recorded("dns", log), Recorded("elb", log, fail_start=True)])
    parts = Parts([Recorded("a", log), group])
    with pytest.raises(PartFailed, match=r"^elb: port 53 is in use$"):
        await parts.start()
    assert {"stop dns", "stop elb", "stop a"} <= set(log)
    assert log[-1] == "stop a"
