"""The runtime's wiring without starting the twin: its stop, readiness and task hooks."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import pytest

from fargo.local.cloudmap.registry import CloudMap
from fargo.local.ec2.network import Placement
from fargo.local.ecr.registry import ImageManifest
from fargo.local.ecs.metadata import TaskMetadataEndpoint
from fargo.local.ecs.task import Task
from fargo.local.elb.load_balancing import Target, TargetHealthDescription, TargetState
from fargo.local.runtime import Runtime
from fargo.local.task_hooks import RuntimeTaskHooks
from fargo.spec import parse_spec

SPEC = parse_spec(
    """
name: rt
network:
  cidr: 10.0.0.0/16
  subnets: {public: [10.0.0.0/24, 10.0.1.0/24], private: [10.0.10.0/24, 10.0.11.0/24]}
images: {app: {dockerfile: app/Dockerfile}}
cluster: {name: test}
services:
  app: {image: app, port: 8080, target_groups: [app]}
target_groups:
  app: {}
load_balancers:
  public:
    scheme: internet-facing
    listeners: [{port: 80, protocol: HTTP, default_action: {forward: app}}]
"""
)


class FakeLoadBalancers:
    """`deregister_targets` drains until `drained` is set; health as `describe` says."""

    def __init__(self) -> None:
        self.drained = asyncio.Event()
        self.draining: list[str] = []
        self.described: list[TargetHealthDescription] = []

    async def deregister_targets(self, group: str, ids: list[str]) -> None:
        self.draining += ids
        await self.drained.wait()

    def describe_target_health(self, group: str) -> list[TargetHealthDescription]:
        return self.described


class FakeDns:
    address = ("127.0.0.2", 8053)


def make_task(tmp_path: Path) -> Task:
    subnet = SPEC.network.subnets.private[0]
    return Task(
        id="t1",
        service="app",
        cluster="test",
        region=SPEC.region,
        family="rt-app",
        revision=1,
        placement=Placement(subnet, 0, "127.0.10.4"),
        port=8080,
        cpu=256,
        memory=512,
        image=ImageManifest("app", "0" * 64, ("python", "app.py"), tmp_path),
        log_path=tmp_path / "t1.log",
    )


def make_hooks(elb: FakeLoadBalancers) -> RuntimeTaskHooks:
    return RuntimeTaskHooks(
        SPEC,
        elb=cast(Any, elb),
        cloud_map=CloudMap(),
        metadata=TaskMetadataEndpoint(lambda task_id: None, "127.0.0.3"),
        dns=cast(Any, FakeDns()),
        on_change=lambda: None,
    )


def test_a_task_gets_only_the_v4_metadata_variable(tmp_path: Path) -> None:
    env = make_hooks(FakeLoadBalancers()).environment(make_task(tmp_path))
    assert env["ECS_CONTAINER_METADATA_URI_V4"].startswith("http://127.0.0.3:")
    assert env["ECS_CONTAINER_METADATA_URI_V4"].endswith("/v4/t1")
    assert "ECS_CONTAINER_METADATA_URI" not in env
    assert (env["HOST"], env["PORT"]) == ("127.0.10.4", "8080")


async def test_deregistering_without_drain_does_not_wait_for_the_drain(tmp_path: Path) -> None:
    elb = FakeLoadBalancers()
    hooks = make_hooks(elb)
    task = make_task(tmp_path)

    await asyncio.wait_for(hooks.deregister(task, drain=False), timeout=1)
    assert elb.draining == ["t1"]  # marked draining before the task stops

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(hooks.deregister(task, drain=True), timeout=0.1)
    await hooks.close()  # cancels the background drain


def test_target_failure_gives_the_load_balancers_reason(tmp_path: Path) -> None:
    elb = FakeLoadBalancers()
    hooks = make_hooks(elb)
    task = make_task(tmp_path)
    target = Target("t1", "127.0.10.4", 8080)
    elb.described = [TargetHealthDescription(target, TargetState.HEALTHY, None, None)]
    assert hooks.target_failure(task) is None and hooks.targets_healthy(task)

    elb.described = [
        TargetHealthDescription(
            target,
            TargetState.UNHEALTHY,
            "Target.ResponseCodeMismatch",
            "Health checks failed with these codes: [404]",
        )
    ]
    assert not hooks.targets_healthy(task)
    assert hooks.target_failure(task) == (
        "(target-group app) Target.ResponseCodeMismatch: "
        "Health checks failed with these codes: [404]"
    )


class Failing:
    services: dict[str, Any] = {}

    async def stop(self) -> None:
        raise RuntimeError("stop failed")


async def test_stop_stops_every_part_even_when_one_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = Runtime(SPEC, spec_path=tmp_path / "fargo.yaml", state_dir=tmp_path / "s")
    stopped: list[str] = []

    async def metadata_stop() -> None:
        stopped.append("metadata")

    async def dns_stop() -> None:
        stopped.append("dns")

    monkeypatch.setattr(runtime.metadata, "stop", metadata_stop)
    monkeypatch.setattr(runtime.dns, "stop", dns_stop)
    runtime.cluster = cast(Any, Failing())
    runtime.elb = cast(Any, Failing())

    with pytest.raises(RuntimeError, match="stop failed"):
        await runtime.stop()

    assert stopped == ["metadata", "dns"]
    assert runtime.cluster is None and runtime.elb is None
    await runtime.stop()  # idempotent
    assert stopped == ["metadata", "dns"] * 2


async def test_ready_after_is_set_by_wait_ready_not_by_asking(tmp_path: Path) -> None:
    runtime = Runtime(SPEC, spec_path=tmp_path / "fargo.yaml", state_dir=tmp_path / "s")
    runtime.cluster = cast(Any, Failing())  # no services: ready at once

    assert runtime.readiness()["ready"] and runtime.ready_after is None
    assert (await runtime.wait_ready())["ready"]
    assert runtime.ready_after is not None
    runtime.cluster = None
