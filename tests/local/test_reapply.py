"""A new spec for a running twin: what is checked before anything changes, and where a
task deregisters from after its service moved (the end-to-end side: tests/e2e/test_reapply.py)."""

from __future__ import annotations

import asyncio
import socket
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


def test_only_an_added_listener_whose_address_is_taken_is_refused(tmp_path: Path) -> None:
    """Listeners served already are not probed again (Caddy holds those it bound itself),
    wherever the load balancer's Caddy runs; a new one on a taken port is refused."""
    spec = load_spec(Path(__file__).resolve().parents[2] / "fargo.yaml")
    public = spec.only_load_balancer("public")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for binds_new_listeners in (True, False):  # False: internet-facing in VPC mode
            plane = CaddyDataPlane(
                public,
                state_dir=tmp_path,
                bind={"public": "127.0.0.1"},
                listener_port=lambda _, p: port if p == 8443 else p + 40000,
                certificate=None,
                binds_new_listeners=binds_new_listeners,
            )
            assert plane.reconfigure_problems(public) == []
            added = public.model_copy(deep=True)
            listener = added.load_balancers["public"].listeners[0].model_copy(update={"port": 8443})
            added.load_balancers["public"].listeners.append(listener)
            [problem] = plane.reconfigure_problems(added)
            assert problem.startswith(f"port {port}/tcp on 127.0.0.1 is in use ")
            assert "load_balancers.public.listeners (port 8443)" in problem
