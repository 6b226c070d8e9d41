"""Security groups, enforced by the VPC router in one nftables table.

A VPC has no layer 2: every packet between interfaces crosses the router, so one
table (``table inet fargo_vpc``) in the router's namespace holds every group. Each
group is a named set of its members' addresses; a connection to a member is admitted
only by an ingress rule of that member's group (source: another group or a CIDR), and
is otherwise *dropped* — a forbidden connection times out, as on AWS. Egress is open;
replies always pass (stateful). New connections from the internet gateway are
dropped, and the VPC's DNS and metadata addresses admit only the VPC.

Usage::

    table = SecurityGroupTable(router, IPv4Network("10.0.0.0/16"), [dns, metadata])
    table.apply([
        SecurityGroup("backend-private", [IngressRule("tcp", "backend-public", 8090)]),
        SecurityGroup("backend-public"),
    ])
    table.add_member("backend-private", IPv4Address("10.0.10.7"))   # no rule reload
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from fargo.local.ec2.commands import nft_load
from fargo.local.ec2.errors import InvalidSecurityGroup
from fargo.local.ec2.netns import NetworkNamespace

TABLE = "fargo_vpc"
INTERNET_GATEWAY_LINK = "igw"
PROTOCOLS = ("tcp", "udp", "all")


@dataclass(frozen=True)
class IngressRule:
    """Admit ``protocol`` on ports ``from_port``–``to_port`` (one port when ``to_port`` is
    None; ignored for "all") from a group's members (``source`` a name) or a CIDR."""

    protocol: str
    source: str | IPv4Network
    from_port: int | None = None
    to_port: int | None = None

    def ports(self) -> str:
        """The nftables port expression: ``8090`` or ``8000-8100``."""
        low = self.from_port
        high = self.to_port if self.to_port is not None else low
        return str(low) if low == high else f"{low}-{high}"


@dataclass(frozen=True)
class SecurityGroup:
    """A named group and its ingress rules."""

    name: str
    ingress: Sequence[IngressRule] = ()


def set_names(groups: Sequence[SecurityGroup]) -> dict[str, str]:
    """The nftables set of each group: ``sg<index>_<name with only [A-Za-z0-9_]>``."""
    return {g.name: f"sg{i}_{re.sub(r'[^A-Za-z0-9_]', '_', g.name)}" for i, g in enumerate(groups)}


def validate(groups: Sequence[SecurityGroup]) -> None:
    """Raise InvalidSecurityGroup for duplicate names, unknown sources, bad protocols/ports."""
    names = [g.name for g in groups]
    for name in names:
        if not name or names.count(name) > 1:
            raise InvalidSecurityGroup(
                f"security group names must be unique and non-empty: {names}"
            )
    for group in groups:
        for rule in group.ingress:
            where = f"security group {group.name!r}, ingress rule {rule}"
            if rule.protocol not in PROTOCOLS:
                raise InvalidSecurityGroup(f"{where}: protocol must be one of {PROTOCOLS}")
            if isinstance(rule.source, str) and rule.source not in names:
                raise InvalidSecurityGroup(
                    f"{where}: source group {rule.source!r} does not exist; known groups: {names}"
                )
            if rule.protocol == "all":
                continue
            low, high = rule.from_port, rule.to_port if rule.to_port is not None else rule.from_port
            if low is None or high is None or not 0 <= low <= high <= 65535:
                raise InvalidSecurityGroup(f"{where}: ports must satisfy 0 ≤ from ≤ to ≤ 65535")


def render(
    groups: Sequence[SecurityGroup],
    members: dict[str, set[IPv4Address]],
    vpc_cidr: IPv4Network,
    service_addresses: Sequence[IPv4Address],
) -> str:
    """The nftables script that replaces the whole table atomically."""
    sets = set_names(groups)
    out = [f"table inet {TABLE}", f"delete table inet {TABLE}", f"table inet {TABLE} {{"]
    for group in groups:
        out += [f"\tset {sets[group.name]} {{  # {group.name}", "\t\ttype ipv4_addr"]
        if elements := sorted(members.get(group.name, ())):
            out.append("\t\telements = { " + ", ".join(map(str, elements)) + " }")
        out.append("\t}")
    out += [
        "\tchain forward {",
        "\t\ttype filter hook forward priority filter; policy accept;",
        "\t\tct state established,related accept",
        "\t\tct state invalid drop",
        f'\t\tiifname "{INTERNET_GATEWAY_LINK}" drop',
    ]
    for group in groups:
        for rule in group.ingress:
            source = f"@{sets[rule.source]}" if isinstance(rule.source, str) else rule.source
            match = "" if rule.protocol == "all" else f" {rule.protocol} dport {rule.ports()}"
            out.append(f"\t\tip daddr @{sets[group.name]} ip saddr {source}{match} accept")
    out += [f"\t\tip daddr @{sets[g.name]} drop" for g in groups]
    out += [
        "\t}",
        "\tchain input {",
        "\t\ttype filter hook input priority filter; policy accept;",
        "\t\tct state established,related accept",
        f'\t\tiifname "{INTERNET_GATEWAY_LINK}" drop',
    ]
    if service_addresses:
        services = "{ " + ", ".join(map(str, service_addresses)) + " }"
        out += [
            f"\t\tip daddr {services} ip saddr {vpc_cidr} accept",
            f"\t\tip daddr {services} drop",
        ]
    out += ["\t}", "}"]
    return "\n".join(out) + "\n"


class SecurityGroupTable:
    """The router's security-group table: whole-table reloads and membership updates."""

    def __init__(
        self,
        router: NetworkNamespace,
        vpc_cidr: IPv4Network,
        service_addresses: Iterable[IPv4Address] = (),
    ) -> None:
        self._router = router
        self._vpc_cidr = vpc_cidr
        self._services = tuple(service_addresses)
        self._groups: tuple[SecurityGroup, ...] = ()
        self._members: dict[str, set[IPv4Address]] = {}
        self._lock = threading.Lock()

    @property
    def groups(self) -> tuple[SecurityGroup, ...]:
        return self._groups

    def members(self, group: str) -> frozenset[IPv4Address]:
        return frozenset(self._members.get(group, ()))

    def check_known(self, names: Iterable[str]) -> None:
        """Raise InvalidSecurityGroup unless every group in ``names`` was applied."""
        for name in names:
            if name not in self._members:
                known = [g.name for g in self._groups]
                raise InvalidSecurityGroup(
                    f"security group {name!r} does not exist (known: {known}); "
                    "apply() it before adding members"
                )

    def render(self, groups: Sequence[SecurityGroup]) -> str:
        validate(groups)
        return render(groups, self._members, self._vpc_cidr, self._services)

    def apply(self, groups: Sequence[SecurityGroup]) -> None:
        """Load every group and rule at once (one nftables transaction); members of
        groups that remain are kept, those of groups that went away are dropped."""
        groups = tuple(groups)
        with self._lock:
            nft_load(self._router, self.render(groups))
            self._groups = groups
            self._members = {g.name: self._members.get(g.name, set()) for g in groups}

    def add_member(self, group: str, ip: IPv4Address) -> None:
        """Put ``ip`` into ``group`` (its rules apply from the next new connection)."""
        self._update("add", group, ip)

    def remove_member(self, group: str, ip: IPv4Address) -> None:
        """Take ``ip`` out of ``group``; a no-op when it is not a member."""
        self._update("delete", group, ip)

    def _update(self, verb: str, group: str, ip: IPv4Address) -> None:
        with self._lock:
            self.check_known([group])
            current = self._members[group]
            if (ip in current) == (verb == "add"):
                return
            set_name = set_names(self._groups)[group]
            nft_load(self._router, f"{verb} element inet {TABLE} {set_name} {{ {ip} }}\n")
            if verb == "add":
                current.add(ip)
            else:
                current.discard(ip)
