"""VPC mode's plan, before anything is built: security groups from the spec, where the
load balancers and the VPC's own services sit, which ports are published."""

from __future__ import annotations

from ipaddress import IPv4Network
from pathlib import Path

from fargo.local.ec2.network import NetworkInterface
from fargo.local.ec2.vpc_mode import ENDPOINTS_GROUP, VpcNetwork, security_groups_of
from fargo.spec import load_spec

ROOT = Path(__file__).resolve().parents[3]
SPEC = load_spec(ROOT / "fargo.yaml")


def test_security_groups_come_from_the_specs_paths() -> None:
    groups = {g.name: g for g in security_groups_of(SPEC)}
    private = groups["service:backend-private"].ingress
    assert [(r.protocol, r.source, r.from_port) for r in private] == [
        ("tcp", "service:backend-public", 8090)
    ]
    public = groups["lb:public"].ingress
    assert {(r.source, r.from_port) for r in public} == {
        (IPv4Network("0.0.0.0/0"), 443),
        (IPv4Network("0.0.0.0/0"), 80),
    }
    assert groups["service:frontend"].ingress[0].source == "lb:public"


def test_load_balancers_get_planned_enis_and_the_vpc_its_reserved_addresses(
    tmp_path: Path,
) -> None:
    network = VpcNetwork(SPEC, state_dir=tmp_path, published_ports={443: 9443})
    assert network.load_balancer_address("internal", "internal") == "10.0.10.4"
    assert network.load_balancer_address("public", "internet-facing") == "127.0.0.1"
    assert network.dns_address == ("10.0.0.2", 53)
    assert network.metadata_address == ("169.254.170.2", 80)
    assert network.registry_address == ("198.51.100.10", 5000)
    assert network.listener_port("public", 443) == 9443  # published on the host
    assert network.listener_port("internal", 8090) == 8090  # inside the VPC: its own port
    assert network.container_port(80) == 80  # a task's own namespace: no port moves
    assert network.validate() == []  # this machine has what VPC mode needs


def test_an_ecr_endpoint_puts_the_registry_in_each_private_subnet(tmp_path: Path) -> None:
    spec = SPEC.model_copy(deep=True)
    spec.network.nat_gateways = 0
    spec.network.vpc_endpoints = ["ecr.api", "ecr.dkr", "s3", "logs"]
    network = VpcNetwork(spec, state_dir=tmp_path)

    assert network.registry_endpoint_addresses == (("10.0.10.254", 5000), ("10.0.11.254", 5000))
    in_zone = {
        zone: network.registry_address_for(
            NetworkInterface("eni-1", IPv4Network(subnet), zone, "10.0.1x.7", "10.0.1x.7")
        )
        for zone, subnet in enumerate(("10.0.10.0/24", "10.0.11.0/24"))
    }
    assert in_zone == {0: ("10.0.10.254", 5000), 1: ("10.0.11.254", 5000)}
    (endpoints,) = [g for g in security_groups_of(spec) if g.name == ENDPOINTS_GROUP]
    assert {(r.source, r.from_port) for r in endpoints.ingress} == {
        (f"service:{name}", 5000) for name in spec.services
    }


def test_without_an_ecr_endpoint_tasks_pull_from_the_internet_side(tmp_path: Path) -> None:
    spec = SPEC.model_copy(deep=True)
    spec.network.vpc_endpoints = ["s3", "logs"]  # no registry endpoint: nothing changes
    network = VpcNetwork(spec, state_dir=tmp_path)
    eni = NetworkInterface("eni-1", IPv4Network("10.0.10.0/24"), 0, "10.0.10.7", "10.0.10.7")

    assert network.registry_endpoint_addresses == ()
    assert network.registry_address_for(eni) == ("198.51.100.10", 5000)
    assert ENDPOINTS_GROUP not in {g.name for g in security_groups_of(spec)}
