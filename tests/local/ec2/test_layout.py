"""The VPC layout's checks and the route tables it yields (pure, no namespaces)."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

import pytest

from fargo.local.ec2.addressing import check_assignable, dns_address, first_free, router_address
from fargo.local.ec2.errors import AddressExhausted, InvalidAddress, InvalidVpcLayout
from fargo.local.ec2.layout import VpcLayout
from fargo.local.ec2.route_tables import NatTarget, plan_route_tables, render_routing

N = IPv4Network
PUBLIC = (N("10.0.0.0/24"), N("10.0.1.0/24"))
PRIVATE = (N("10.0.10.0/24"), N("10.0.11.0/24"))
REFERENCE = VpcLayout(N("10.0.0.0/16"), PUBLIC, PRIVATE, nat_gateways=1)


def test_the_reference_layout_is_valid_and_knows_its_zones():
    REFERENCE.validate()
    assert REFERENCE.zone_of(N("10.0.11.0/24")) == 1
    assert REFERENCE.is_public(N("10.0.1.0/24"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"nat_gateways": 3}, "NAT gateways"),
        ({"public_subnets": ()}, "at least one public subnet"),
        ({"private_subnets": (N("10.1.0.0/24"),)}, "not inside the VPC CIDR"),
        ({"private_subnets": (N("10.0.0.0/25"),)}, "overlap"),
        ({"cidr": N("10.0.0.0/8")}, "/16 to /28"),
        ({"internet_cidr": N("10.0.200.0/24")}, "overlaps"),
    ],
)
def test_bad_layouts_are_refused_with_what_to_change(change, message):
    with pytest.raises(InvalidVpcLayout, match=message):
        replace(REFERENCE, **change).validate()


def test_reserved_and_free_addresses_follow_aws():
    subnet = N("10.0.10.0/24")
    assert router_address(subnet) == IPv4Address("10.0.10.1")
    assert dns_address(N("10.0.0.0/16")) == IPv4Address("10.0.0.2")
    for bad in ("10.0.10.0", "10.0.10.3", "10.0.10.255", "10.0.11.5"):
        with pytest.raises(InvalidAddress):
            check_assignable(subnet, IPv4Address(bad))
    assert first_free(subnet, {IPv4Address("10.0.10.4")}) == IPv4Address("10.0.10.5")
    tiny = N("10.0.10.0/29")
    with pytest.raises(AddressExhausted):
        first_free(tiny, {IPv4Address(f"10.0.10.{i}") for i in (4, 5, 6)})


def test_private_zones_use_their_own_nat_gateway_else_the_first_else_none():
    nat_a, nat_b = (
        NatTarget(IPv4Address("10.0.0.254"), "eni1"),
        NatTarget(IPv4Address("10.0.1.254"), "eni2"),
    )
    one = plan_route_tables(PUBLIC, PRIVATE, [nat_a])
    assert [t.nat for t in one[1:]] == [nat_a, nat_a]
    both = plan_route_tables(PUBLIC, PRIVATE, [nat_a, nat_b])
    assert [t.nat for t in both[1:]] == [nat_a, nat_b]
    none = plan_route_tables(PUBLIC, PRIVATE, [])
    assert [t.nat for t in none[1:]] == [None, None]
    assert none[1].describe(N("10.0.0.0/16")) == [("10.0.0.0/16", "local")]
    assert one[0].describe(N("10.0.0.0/16"))[1] == ("0.0.0.0/0", "igw")


def test_routing_commands_keep_the_vpc_local_and_everything_else_unreachable():
    tables = plan_route_tables(PUBLIC, PRIVATE, [NatTarget(IPv4Address("10.0.0.254"), "eni1")])
    commands = render_routing(N("10.0.0.0/16"), tables)
    assert commands[:2] == [
        "route add unreachable 10.0.0.0/16",
        "rule add to 10.0.0.0/16 lookup main pref 100",
    ]
    assert "rule add from 10.0.0.0/24 lookup 100 pref 200" in commands
    assert "route add default dev igw table 100" in commands
    assert "rule add from 10.0.11.0/24 lookup 111 pref 200" in commands
    assert "route add default via 10.0.0.254 dev eni1 onlink table 111" in commands
    assert commands[-1] == "rule add from 10.0.0.0/16 unreachable pref 300"
