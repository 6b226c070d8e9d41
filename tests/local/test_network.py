"""Loopback mode's address plan: the VPC mapped onto 127.0.0.0/8, reserved addresses,
load balancer addresses, exhaustion."""

from __future__ import annotations

import ipaddress
import re

import pytest

from fargo.local.ec2 import loopback as network
from fargo.local.ec2.loopback import LoopbackNetwork
from fargo.local.ec2.network import AddressExhausted
from fargo.spec import parse_spec


def plan(
    public: str = "10.0.0.0/24, 10.0.1.0/24",
    private: str = "10.0.10.0/24, 10.0.11.0/24",
    cidr: str = "10.0.0.0/16",
) -> LoopbackNetwork:
    spec = parse_spec(
        f"""
name: t
network:
  cidr: {cidr}
  subnets: {{public: [{public}], private: [{private}]}}
images: {{app: {{dockerfile: app/Dockerfile}}}}
cluster: {{name: test}}
services:
  app: {{image: app, port: 8080}}
"""
    )
    return LoopbackNetwork(spec)


def test_a_vpc_address_keeps_its_last_three_octets_inside_loopback() -> None:
    net = plan()
    assert str(net.to_loopback(ipaddress.IPv4Address("10.0.10.7"))) == "127.0.10.7"
    assert str(net.to_loopback(ipaddress.IPv4Address("10.0.255.254"))) == "127.0.255.254"
    assert str(network.to_loopback(ipaddress.IPv4Address("10.4.10.7"))) == "127.4.10.7"
    assert str(network.to_loopback(ipaddress.IPv4Address("172.20.1.7"))) == "127.20.1.7"
    assert str(network.to_loopback(ipaddress.IPv4Address("192.168.1.7"))) == "127.168.1.7"


def test_dns_and_metadata_take_the_reserved_addresses_at_the_vpcs_base() -> None:
    net = plan()
    assert net.dns_address == ("127.0.0.2", network.DNS_PORT)
    assert net.metadata_address == ("127.0.0.3", 0)  # any free port


@pytest.mark.parametrize(
    ("cidr", "public", "private", "base"),
    [
        ("10.4.0.0/16", "10.4.0.0/24, 10.4.1.0/24", "10.4.10.0/24, 10.4.11.0/24", "127.4"),
        ("172.20.0.0/16", "172.20.0.0/24, 172.20.1.0/24", "172.20.10.0/24, 172.20.11.0/24",
         "127.20"),
        ("192.168.0.0/16", "192.168.0.0/24, 192.168.1.0/24",
         "192.168.10.0/24, 192.168.11.0/24", "127.168"),
    ],
)  # fmt: skip
def test_vpcs_of_other_cidrs_get_addresses_of_their_own(
    cidr: str, public: str, private: str, base: str
) -> None:
    net, reference = plan(public, private, cidr), plan()
    own = {
        net.dns_address[0],
        net.metadata_address[0],
        net.load_balancer_address("public", "internet-facing"),
        net.place_task().ip,
    }
    assert own == {f"{base}.0.2", f"{base}.0.3", f"{base}.0.1", f"{base}.10.4"}
    theirs = {
        reference.dns_address[0],
        reference.metadata_address[0],
        reference.load_balancer_address("public", "internet-facing"),
        reference.place_task().ip,
    }
    assert own.isdisjoint(theirs)
    eni = net.place_task()
    assert eni.ip == f"{base}.11.4"
    assert eni.private_ip == cidr.split(".")[0] + eni.ip[3:]  # back in the VPC


def test_tasks_skip_reserved_addresses_and_spread_over_the_zones() -> None:
    net = plan()
    placements = [net.place_task() for _ in range(4)]
    assert [(p.ip, p.zone) for p in placements] == [
        ("127.0.10.4", 0), ("127.0.11.4", 1), ("127.0.10.5", 0), ("127.0.11.5", 1),
    ]  # fmt: skip
    assert str(placements[1].subnet) == "10.0.11.0/24"
    net.release("127.0.10.4")
    assert net.place_task().ip == "127.0.10.4"


def test_internet_facing_load_balancers_get_distinct_public_addresses() -> None:
    net = plan()
    first = net.load_balancer_address("public", "internet-facing")
    second = net.load_balancer_address("other", "internet-facing")
    internal = net.load_balancer_address("internal", "internal")
    assert first == "127.0.0.1"
    assert second == "127.0.0.4"  # public, past the reserved addresses
    assert ipaddress.IPv4Address(internal) in ipaddress.IPv4Network("127.0.10.0/23")
    assert net.load_balancer_address("other", "internet-facing") == second  # stable


def test_a_first_public_subnet_away_from_the_vpc_base_still_gives_distinct_addresses() -> None:
    net = plan(public="10.0.2.0/24, 10.0.3.0/24")
    first = net.load_balancer_address("a", "internet-facing")
    second = net.load_balancer_address("b", "internet-facing")
    assert (first, second) == ("127.0.2.1", "127.0.2.4")


def test_exhausted_subnets_raise_a_clear_error() -> None:
    net = plan(public="10.0.0.0/28, 10.0.0.16/28", private="10.0.10.0/28, 10.0.10.16/28")
    usable = 16 - network.RESERVED_HEAD - 1  # the last address is reserved as well
    addresses = {net.place_task().ip for _ in range(2 * usable)}
    assert len(addresses) == 2 * usable and "127.0.10.15" not in addresses
    with pytest.raises(AddressExhausted, match=re.escape("10.0.10.0/28, 10.0.10.16/28")):
        net.place_task()
    for name in ("a", "b"):
        net.load_balancer_address(name, "internet-facing")
    for name in [f"lb{i}" for i in range(2 * usable - 1)]:
        net.load_balancer_address(name, "internet-facing")
    with pytest.raises(AddressExhausted, match="public subnets"):
        net.load_balancer_address("one-too-many", "internet-facing")


def test_privileged_ports_move_up_by_8000(monkeypatch: pytest.MonkeyPatch) -> None:
    net = plan()
    assert tuple(net.listener_port("public", port) for port in (443, 80, 8080)) == (
        8443, 8080, 8080,
    )  # fmt: skip
    monkeypatch.setattr(network, "is_root", lambda: False)
    assert net.container_port(80) == 8080 and net.container_port(8090) == 8090
    monkeypatch.setattr(network, "is_root", lambda: True)
    assert net.container_port(80) == 80
