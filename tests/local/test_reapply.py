"""A new spec for a running twin: what is checked before anything changes, and where a
task deregisters from after its service moved (the end-to-end side: tests/e2e/test_reapply.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests.local.test_runtime import SPEC_TEXT, FakeLoadBalancers, make_hooks, make_task, runtime_of

from fargo.local.caddy.data_plane import CaddyDataPlane
from fargo.local.elb.load_balancing import Target
from fargo.local.reapply import SpecRefused, check
from fargo.spec import load_spec, parse_spec


class RecordingLoadBalancers(FakeLoadBalancers):
    def __init__(self) -> None:
        super().__init__()
        self.registered: list[tuple[str, str]] = []
        self.deregistered: list[tuple[str, str]] = []
        self.drained.set()

    def register_targets(self, group: str, targets: list[Target]) -> None:
        self.registered += [(group, t.id) for t in targets]

    async def deregister_targets(self, group: str, ids: list[str]) -> None:
        self.deregistered += [(group, i) for i in ids]


async def test_a_task_deregisters_where_it_registered_after_its_service_moved(
    tmp_path: Path,
) -> None:
    elb = RecordingLoadBalancers()
    hooks = make_hooks(elb)
    task = make_task(tmp_path)
    await hooks.register(task)
    moved = SPEC_TEXT.replace("target_groups: [app]}", "target_groups: [other]}").replace(
        "  app: {}", "  app: {}\n  other: {}"
    )
    hooks.spec = parse_spec(moved)  # `fargo up` with the service in another group
    await hooks.deregister(task, drain=True)
    assert elb.registered == [("app", "t1")]
    assert elb.deregistered == [("app", "t1")]


def test_the_new_spec_is_checked_against_the_running_parts_first(tmp_path: Path) -> None:
    runtime = runtime_of(SPEC_TEXT, tmp_path)
    calling = SPEC_TEXT.replace(
        "app: {image: app, port: 8080, target_groups: [app]}",
        "app: {image: app, port: 8080, target_groups: [app], environment: "
        '{CALLEE: "http://${lb:public.dns_name}:80/x"}}',
    )
    with pytest.raises(SpecRefused, match=r"services.app.environment.CALLEE calls port 80"):
        check(runtime, parse_spec(calling))
    other_network = SPEC_TEXT.replace("cidr: 10.0.0.0/16", "cidr: 10.0.0.0/17")
    with pytest.raises(SpecRefused) as refused:
        check(runtime, parse_spec(other_network))
    assert refused.value.problems == [
        "network.cidr: 10.0.0.0/16 → 10.0.0.0/17 (the network is laid out at start); "
        "`fargo down` then `fargo up` applies it"
    ]
    assert runtime.spec.network.cidr.prefixlen == 16  # nothing taken
    assert check(runtime, parse_spec(SPEC_TEXT)).empty


def test_a_twin_still_starting_refuses_a_new_spec(tmp_path: Path) -> None:
    runtime = runtime_of(SPEC_TEXT, tmp_path)
    with pytest.raises(SpecRefused, match="still starting"):
        asyncio.run(runtime.apply(parse_spec(SPEC_TEXT)))


def test_a_listener_added_where_caddy_cannot_bind_it_is_refused_saying_what_to_do(
    tmp_path: Path,
) -> None:
    spec = load_spec(Path(__file__).resolve().parents[2] / "fargo.yaml")
    public = spec.only_load_balancer("public")
    plane = CaddyDataPlane(
        public,
        state_dir=tmp_path,
        bind={"public": "127.0.0.1"},
        listener_port=lambda _, port: port + 8000,
        certificate=None,
        binds_new_listeners=False,  # an internet-facing load balancer in VPC mode
    )
    problems = plane.reconfigure_problems(public)
    assert problems[0] == (
        "load_balancers.public.listeners (port 443): added to an internet-facing load balancer "
        "in VPC mode, whose listener sockets are made on this machine when the twin starts and "
        "handed to a Caddy running in the load balancer's ENI, which cannot take a new one "
        "while it runs; `fargo down` then `fargo up` applies it (a new listener of an internal "
        "load balancer is applied in place)"
    )
