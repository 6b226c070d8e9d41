"""AWS route tables as policy routing in the VPC router.

Each route table is a kernel routing table; each subnet's traffic is steered into its
table by the subnet's *source* range (``ip rule from <subnet>``), as a subnet
association does. The rules, by preference:

- 100 ``to <vpc> lookup main``: the ``local`` route every AWS route table has (main
  holds a /32 per interface and ``unreachable <vpc>`` for unassigned addresses);
- 200 ``from <subnet> lookup <its table>``: public subnets → ``0.0.0.0/0`` via the
  internet gateway; private subnets → ``0.0.0.0/0`` via their zone's NAT gateway (or
  the first one), or no default route at all when the VPC has no NAT gateway;
- 300 ``from <vpc> unreachable``: nothing else leaves (the sender gets "no route" at
  once, where AWS would let the packet vanish; fast failure is kinder to tests).

Usage::

    tables = plan_route_tables(public, private, nat_targets=[NatTarget(ip, link)])
    ip_batch(router, render_routing(vpc_cidr, tables))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from fargo.local.ec2.internet_gateway import LINK as INTERNET_GATEWAY_LINK

PUBLIC_TABLE = 100
PRIVATE_TABLE_BASE = 110
PREF_LOCAL, PREF_SUBNET, PREF_UNREACHABLE = 100, 200, 300


@dataclass(frozen=True)
class NatTarget:
    """A NAT gateway as a route target: its private address and the router's link to it."""

    ip: IPv4Address
    link: str


@dataclass(frozen=True)
class RouteTable:
    """One route table: its kernel table, its subnets and where ``0.0.0.0/0`` goes
    (the internet gateway, a NAT gateway, or nowhere)."""

    name: str
    table_id: int
    subnets: tuple[IPv4Network, ...]
    internet_gateway: bool = False
    nat: NatTarget | None = None

    def describe(self, vpc_cidr: IPv4Network) -> list[tuple[str, str]]:
        """The routes as the AWS console shows them: (destination, target)."""
        routes = [(str(vpc_cidr), "local")]
        if self.internet_gateway:
            routes.append(("0.0.0.0/0", "igw"))
        elif self.nat is not None:
            routes.append(("0.0.0.0/0", f"nat ({self.nat.ip})"))
        return routes


def plan_route_tables(
    public: Sequence[IPv4Network],
    private: Sequence[IPv4Network],
    nat_targets: Sequence[NatTarget],
) -> list[RouteTable]:
    """One public table for all public subnets; one private table per zone, whose
    default route is that zone's NAT gateway, else the first, else none."""
    tables = [RouteTable("public", PUBLIC_TABLE, tuple(public), internet_gateway=True)]
    for zone, subnet in enumerate(private):
        nat = nat_targets[zone] if zone < len(nat_targets) else None
        if nat is None and nat_targets:
            nat = nat_targets[0]
        tables.append(RouteTable(f"private-{zone}", PRIVATE_TABLE_BASE + zone, (subnet,), nat=nat))
    return tables


def render_routing(vpc_cidr: IPv4Network, tables: Sequence[RouteTable]) -> list[str]:
    """The router's ``ip`` commands for these tables and the VPC-wide rules."""
    commands = [
        f"route add unreachable {vpc_cidr}",
        f"rule add to {vpc_cidr} lookup main pref {PREF_LOCAL}",
    ]
    for table in tables:
        commands += [
            f"rule add from {subnet} lookup {table.table_id} pref {PREF_SUBNET}"
            for subnet in table.subnets
        ]
        if table.internet_gateway:
            commands.append(f"route add default dev {INTERNET_GATEWAY_LINK} table {table.table_id}")
        elif table.nat is not None:
            commands.append(
                f"route add default via {table.nat.ip} dev {table.nat.link} onlink "
                f"table {table.table_id}"
            )
    commands.append(f"rule add from {vpc_cidr} unreachable pref {PREF_UNREACHABLE}")
    return commands
