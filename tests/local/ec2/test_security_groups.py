"""The security-group table as nftables text: sets per group, accept rules, drop for
members, validation with messages that name the problem."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from fargo.local.ec2.errors import InvalidSecurityGroup
from fargo.local.ec2.security_groups import (
    IngressRule,
    SecurityGroup,
    render,
    set_names,
    validate,
)

VPC = IPv4Network("10.0.0.0/16")
SERVICES = [IPv4Address("10.0.0.2"), IPv4Address("169.254.170.2")]
GROUPS = [
    SecurityGroup("frontend", [IngressRule("tcp", IPv4Network("10.0.0.0/16"), 80)]),
    SecurityGroup("backend-public"),
    SecurityGroup(
        "backend-private",
        [IngressRule("tcp", "backend-public", 8090), IngressRule("udp", "frontend", 5000, 5010)],
    ),
]


def test_each_group_is_a_named_set_with_its_members():
    text = render(GROUPS, {"frontend": {IPv4Address("10.0.10.7")}}, VPC, SERVICES)
    assert set_names(GROUPS)["backend-private"] == "sg2_backend_private"
    assert "\tset sg0_frontend {  # frontend\n\t\ttype ipv4_addr\n" in text
    assert "\t\telements = { 10.0.10.7 }\n" in text
    assert text.count("elements") == 1  # empty sets are declared without elements


def test_rules_accept_by_source_group_or_cidr_then_members_are_dropped():
    lines = [line.strip() for line in render(GROUPS, {}, VPC, SERVICES).splitlines()]
    forward = lines[lines.index("chain forward {") : lines.index("chain input {")]
    assert forward[1:6] == [
        "type filter hook forward priority filter; policy accept;",
        "ct state established,related accept",
        "ct state invalid drop",
        'iifname "igw" drop',
        "ip daddr @sg0_frontend ip saddr 10.0.0.0/16 tcp dport 80 accept",
    ]
    assert (
        "ip daddr @sg2_backend_private ip saddr @sg1_backend_public tcp dport 8090 accept"
        in forward
    )
    assert (
        "ip daddr @sg2_backend_private ip saddr @sg0_frontend udp dport 5000-5010 accept" in forward
    )
    drops = [line for line in forward if line.endswith(" drop") and "@" in line]
    assert drops == [f"ip daddr @{name} drop" for name in set_names(GROUPS).values()]
    assert not any("reject" in line for line in lines)  # forbidden connections time out


def test_the_vpc_service_addresses_admit_only_the_vpc():
    text = render([], {}, VPC, SERVICES)
    assert "ip daddr { 10.0.0.2, 169.254.170.2 } ip saddr 10.0.0.0/16 accept" in text
    assert "ip daddr { 10.0.0.2, 169.254.170.2 } drop" in text


def test_the_whole_table_is_replaced_in_one_transaction():
    head = render([], {}, VPC, []).splitlines()[:3]
    assert head == ["table inet fargo_vpc", "delete table inet fargo_vpc", "table inet fargo_vpc {"]


def test_all_protocols_rule_has_no_port_match():
    groups = [SecurityGroup("db", [IngressRule("all", "db")])]
    assert "ip daddr @sg0_db ip saddr @sg0_db accept" in render(groups, {}, VPC, [])


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ([SecurityGroup("a"), SecurityGroup("a")], "unique"),
        (
            [SecurityGroup("a", [IngressRule("tcp", "ghost", 80)])],
            "source group 'ghost' does not exist",
        ),
        ([SecurityGroup("a", [IngressRule("icmp", "a", 80)])], "protocol must be one of"),
        ([SecurityGroup("a", [IngressRule("tcp", "a")])], "ports must satisfy"),
        ([SecurityGroup("a", [IngressRule("udp", "a", 90, 80)])], "ports must satisfy"),
        ([SecurityGroup("a", [IngressRule("tcp", "a", 70000)])], "ports must satisfy"),
    ],
)
def test_malformed_groups_are_refused_with_the_reason(groups, message):
    with pytest.raises(InvalidSecurityGroup, match=message):
        validate(groups)
