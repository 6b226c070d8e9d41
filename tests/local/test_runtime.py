"""The runtime's wiring without starting the twin: its stop, readiness and task hooks."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import pytest
from tests.waiting import until

from fargo.local.cloudmap.registry import CloudMap
from fargo.local.config import TwinConfig
from fargo.local.ec2.loopback import LoopbackNetwork
from fargo.local.ec2.network import NetworkInterface
from fargo.local.ecr.registry import ImageManifest
from fargo.local.ecs.metadata import TaskMetadataEndpoint
from fargo.local.ecs.secrets import TaskSecrets
from fargo.local.ecs.task import Task
from fargo.local.elb.load_balancing import Target, TargetHealthDescription, TargetState
from fargo.local.parts import Together
from fargo.local.runtime import Runtime, StartError
from fargo.local.task_hooks import RuntimeTaskHooks
from fargo.spec import Spec, load_spec, parse_spec

SPEC_TEXT = """
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
SPEC = parse_spec(SPEC_TEXT)


class FakeLoadBalancers:
    """`deregister_targets` drains until `drained` is set, `wait_routed` waits for
    `routed`; health as `describe` says."""

    def __init__(self) -> None:
        self.drained = asyncio.Event()
        self.routed = asyncio.Event()
        self.draining: list[str] = []
        self.described: list[TargetHealthDescription] = []

    async def deregister_targets(self, group: str, ids: list[str]) -> None:
        self.draining += ids
        await self.drained.wait()

    async def wait_routed(self, timeout: float) -> None:
        await asyncio.wait_for(self.routed.wait(), timeout)

    def describe_target_health(self, group: str) -> list[TargetHealthDescription]:
        return self.described


def make_task(tmp_path: Path) -> Task:
    subnet = SPEC.network.subnets.private[0]
    return Task(
        id="t1",
        service="app",
        cluster="test",
        region=SPEC.region,
        family="rt-app",
        revision=1,
        eni=NetworkInterface("eni-0123456789abcdef0", subnet, 0, "10.0.10.4", "127.0.10.4"),
        root=tmp_path,
        port=8080,
        cpu=256,
        memory=512,
        image=ImageManifest("app", "0" * 64, ("python", "app.py"), tmp_path),
        log_path=tmp_path / "t1.log",
    )


def make_hooks(elb: FakeLoadBalancers, spec: Spec = SPEC) -> RuntimeTaskHooks:
    return RuntimeTaskHooks(
        spec,
        elb=cast(Any, elb),
        cloud_map=CloudMap(),
        metadata=TaskMetadataEndpoint(lambda task_id: None, "127.0.0.3"),
        network=LoopbackNetwork(spec),
        secrets=TaskSecrets(spec, Path.cwd()),
        on_change=lambda: None,
    )


def test_a_task_gets_only_the_v4_metadata_variable(tmp_path: Path) -> None:
    env = make_hooks(FakeLoadBalancers()).environment(make_task(tmp_path))
    assert env["ECS_CONTAINER_METADATA_URI_V4"].startswith("http://127.0.0.3:")
    task = make_task(tmp_path)
    uri = make_hooks(FakeLoadBalancers()).environment(task)["ECS_CONTAINER_METADATA_URI_V4"]
    assert uri.endswith(f"/v4/t1-{task.metadata_token}")  # AWS's id-random form
    assert "ECS_CONTAINER_METADATA_URI" not in env
    assert (env["HOST"], env["PORT"]) == ("127.0.10.4", "8080")


def test_a_task_gets_its_services_keep_alive_as_on_fargate(tmp_path: Path) -> None:
    spec = parse_spec(SPEC_TEXT.replace("port: 8080,", "port: 8080, keep_alive: 90,"))
    hooks = make_hooks(FakeLoadBalancers(), spec)

    assert hooks.environment(make_task(tmp_path))["HTTP_KEEP_ALIVE_TIMEOUT"] == "90"
    assert make_hooks(FakeLoadBalancers()).environment(make_task(tmp_path))[
        "HTTP_KEEP_ALIVE_TIMEOUT"
    ] == str(SPEC.services["app"].keep_alive)


async def test_deregistering_without_drain_waits_for_routing_not_for_the_drain(
    tmp_path: Path,
) -> None:
    elb = FakeLoadBalancers()
    hooks = make_hooks(elb)
    task = make_task(tmp_path)

    dead = asyncio.create_task(hooks.deregister(task, drain=False))
    await until(lambda: elb.draining == ["t1"], what="the target marked draining")
    await asyncio.sleep(0.05)
    assert not dead.done()  # its ENI stays until no load balancer routes to it
    elb.routed.set()
    await asyncio.wait_for(dead, timeout=1)  # ... but the drain is not awaited

    draining = asyncio.create_task(hooks.deregister(task, drain=True))
    await until(lambda: elb.draining == ["t1", "t1"], what="the second deregistration")
    assert not draining.done()  # with drain: waits for the load balancers to drain
    elb.drained.set()
    await asyncio.wait_for(draining, timeout=5)  # ... and returns once they have
    await hooks.close()


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


def runtime_of(spec_text: str, tmp_path: Path) -> Runtime:
    config = TwinConfig(
        spec_path=tmp_path / "fargo.yaml", state_dir=tmp_path / "s", network_mode="loopback"
    )
    return Runtime(parse_spec(spec_text), config)


def test_parts_start_in_the_documented_order(tmp_path: Path) -> None:
    runtime = Runtime(
        SPEC,
        TwinConfig(
            spec_path=tmp_path / "f.yaml", state_dir=tmp_path / "s", network_mode="loopback"
        ),
    )
    assert [part.name for part in runtime.parts.parts] == [
        # first up, the log router last down: it reads the tasks' output until they stop
        "log router, VPC network (loopback mode)",
        "disk report",  # what the log writers could not write: a full disk, reported once
        "Cloud Map namespace",
        "task metadata endpoint",
        "ECR registry",
        "load balancer access logs",  # stops after the load balancers: it reads their last lines
        # the images build while each data-plane process starts: together
        "image push, discovery DNS server and load balancers",
        "secrets (local values)",
        "console (the demo page's API)",  # before the tasks: the page's tasks get its URL
        "task wiring (target groups, Cloud Map, metadata)",
        "ECS cluster",
        "Application Auto Scaling",
        "metrics (CloudWatch)",
        "AWS API endpoint",
    ]
    first, together = [p for p in runtime.parts.parts if isinstance(p, Together)]
    assert [part.name for part in first.parts.parts] == [
        "log router",
        "VPC network (loopback mode)",
    ]
    assert [part.name for part in together.parts.parts] == [
        "image push (ECR)",
        "discovery DNS server (Route 53 private zones)",
        "load balancers",
    ]


def test_an_environment_value_calling_a_moved_port_is_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    text = SPEC_TEXT.replace(
        "app: {image: app, port: 8080, target_groups: [app]}",
        "app: {image: app, port: 8080, target_groups: [app], environment: "
        '{CALLEE: "http://${lb:public.dns_name}:80/x"}}',
    )
    runtime = runtime_of(text, tmp_path)
    with pytest.raises(StartError) as raised:
        runtime.validate()
    message = str(raised.value)
    assert "services.app.environment.CALLEE calls port 80 of load balancer 'public'" in message
    assert "serves on 8080" in message
    assert not (tmp_path / "s").exists()  # validation touched nothing


def test_a_published_port_for_a_listener_the_spec_lacks_is_refused(tmp_path: Path) -> None:
    config = TwinConfig(
        spec_path=tmp_path / "f.yaml",
        state_dir=tmp_path / "s",
        published_ports={443: 9443},
        network_mode="loopback",
    )
    with pytest.raises(
        StartError,
        match=r"--publish 443:9443: the spec has no listener on port 443 \(listeners: 80\)",
    ):
        Runtime(SPEC, config).validate()


async def test_ready_after_is_set_by_wait_ready_not_by_asking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = Runtime(
        SPEC,
        TwinConfig(
            spec_path=tmp_path / "f.yaml", state_dir=tmp_path / "s", network_mode="loopback"
        ),
    )
    monkeypatch.setattr(runtime.cluster, "services", {})  # no services: ready at once
    runtime.running = True

    assert runtime.readiness().ready and runtime.ready_after is None
    assert (await runtime.wait_ready()).ready
    assert runtime.ready_after is not None


CONNECT_TEXT = SPEC_TEXT.replace(
    "cluster: {name: test}",
    "cluster: {name: test, service_connect: {namespace: connect.internal}}",
).replace(
    "  app: {image: app, port: 8080, target_groups: [app]}",
    "  app: {image: app, port: 8080, target_groups: [app],\n"
    "        service_connect: {dns_name: app.internal}}",
)


def connect_hooks(spec_text: str) -> RuntimeTaskHooks:
    return make_hooks(FakeLoadBalancers(), parse_spec(spec_text))


def test_a_service_connect_task_registers_in_its_endpoints_cloud_map_service() -> None:
    hooks = connect_hooks(CONNECT_TEXT)

    assert hooks.cloud_map_services("app") == [("connect.internal", "app")]


def test_the_twin_refuses_an_endpoint_port_other_than_the_container_port() -> None:
    """Without a proxy, a DNS answer cannot send port 80 to the container's 8080."""
    problems = connect_hooks(
        CONNECT_TEXT.replace("{dns_name: app.internal}", "{dns_name: app.internal, port: 80}")
    ).validate()

    assert problems == [
        "services.app.service_connect.port 80 differs from the container port 8080: the twin "
        "runs Service Connect as DNS, without a proxy to map one port to the other; use the "
        "container port"
    ]
    assert connect_hooks(CONNECT_TEXT).validate() == []


def test_the_demo_pages_tasks_get_the_consoles_url(tmp_path: Path) -> None:
    internal = parse_spec(SPEC_TEXT.replace("internet-facing", "internal"))
    hooks = make_hooks(FakeLoadBalancers())
    hooks.console_url = lambda: "http://127.0.0.1:40123"
    hidden = make_hooks(FakeLoadBalancers(), internal)
    hidden.console_url = hooks.console_url
    not_started = make_hooks(FakeLoadBalancers())

    assert hooks.environment(make_task(tmp_path))["FARGO_CONSOLE_URL"] == "http://127.0.0.1:40123"
    # Only the tasks an internet-facing load balancer forwards to serve the page.
    assert "FARGO_CONSOLE_URL" not in hidden.environment(make_task(tmp_path))
    assert "FARGO_CONSOLE_URL" not in not_started.environment(make_task(tmp_path))


def test_status_is_described_while_the_twin_starts_before_cloud_map_exists(
    tmp_path: Path,
) -> None:
    spec = load_spec(Path(__file__).resolve().parents[2] / "fargo.yaml")  # with discovery
    runtime = Runtime(
        spec,
        TwinConfig(
            spec_path=tmp_path / "f.yaml", state_dir=tmp_path / "s", network_mode="loopback"
        ),
    )
    described = runtime.describe()  # `fargo status` and a second `fargo up` ask this early
    assert described.discovery and all(d.instances == [] for d in described.discovery)
