"""A VPC's layout: its CIDR, one public and one private subnet per Availability Zone,
how many NAT gateways, and the documentation range that stands in for the internet.
Plain values (no spec model), so the VPC can be built by any interpreter.

Usage::

    layout = VpcLayout(
        IPv4Network("10.0.0.0/16"),
        public_subnets=(IPv4Network("10.0.0.0/24"), IPv4Network("10.0.1.0/24")),
        private_subnets=(IPv4Network("10.0.10.0/24"), IPv4Network("10.0.11.0/24")),
        nat_gateways=1,
    )
    layout.validate()        # raises InvalidVpcLayout
    layout.zone_of(IPv4Network("10.0.11.0/24"))   # 1
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from ipaddress import IPv4Network

from fargo.local.ec2.addressing import METADATA_ADDRESS
from fargo.local.ec2.errors import InvalidVpcLayout
from fargo.local.ec2.internet_gateway import DEFAULT_INTERNET_CIDR

LINK_LOCAL = IPv4Network("169.254.0.0/16")


@dataclass(frozen=True)
class VpcLayout:
    """What the VPC looks like; subnets are listed per zone (index = zone)."""

    cidr: IPv4Network
    public_subnets: tuple[IPv4Network, ...]
    private_subnets: tuple[IPv4Network, ...] = ()
    nat_gateways: int = 1
    internet_cidr: IPv4Network = DEFAULT_INTERNET_CIDR

    @property
    def subnets(self) -> tuple[IPv4Network, ...]:
        return (*self.public_subnets, *self.private_subnets)

    def is_public(self, subnet: IPv4Network) -> bool:
        return subnet in self.public_subnets

    def zone_of(self, subnet: IPv4Network) -> int:
        """The Availability Zone index of a subnet (its position in its list)."""
        for subnets in (self.public_subnets, self.private_subnets):
            if subnet in subnets:
                return subnets.index(subnet)
        raise InvalidVpcLayout(f"{subnet} is not a subnet of the VPC {self.cidr}")

    def validate(self) -> None:
        """Raise InvalidVpcLayout, saying what to change, unless the layout can be built."""
        if not 16 <= self.cidr.prefixlen <= 28:
            raise InvalidVpcLayout(
                f"VPC CIDR {self.cidr}: the prefix must be /16 to /28, as on AWS"
            )
        if self.cidr.overlaps(LINK_LOCAL) or self.cidr.overlaps(self.internet_cidr):
            raise InvalidVpcLayout(
                f"VPC CIDR {self.cidr} overlaps the link-local range or the internet range "
                f"{self.internet_cidr}; choose a private range such as 10.0.0.0/16"
            )
        if self.internet_cidr.prefixlen > 29 or METADATA_ADDRESS in self.internet_cidr:
            raise InvalidVpcLayout(f"internet range {self.internet_cidr}: use a /29 or larger")
        if not self.public_subnets:
            raise InvalidVpcLayout("a VPC needs at least one public subnet")
        for subnet in self.subnets:
            if not subnet.subnet_of(self.cidr):
                raise InvalidVpcLayout(f"subnet {subnet} is not inside the VPC CIDR {self.cidr}")
            if subnet.prefixlen > 28:
                raise InvalidVpcLayout(f"subnet {subnet}: the prefix must be /28 or larger")
        for a, b in itertools.combinations(self.subnets, 2):
            if a.overlaps(b):
                raise InvalidVpcLayout(f"subnets {a} and {b} overlap; subnets must be disjoint")
        if not 0 <= self.nat_gateways <= len(self.public_subnets):
            raise InvalidVpcLayout(
                f"{self.nat_gateways} NAT gateways: use 0, 1 or up to one per zone "
                f"({len(self.public_subnets)} public subnets)"
            )
