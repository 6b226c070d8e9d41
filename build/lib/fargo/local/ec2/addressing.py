"""Addresses a VPC reserves, as AWS does: in every subnet the network address, ``.1``
(the VPC router), ``.2`` (the Amazon DNS server's slot), ``.3`` (reserved) and the
broadcast address; the DNS server itself answers at the VPC's base + 2, the task
metadata endpoint at 169.254.170.2.

Usage::

    subnet = IPv4Network("10.0.10.0/24")
    router_address(subnet)                             # 10.0.10.1
    check_assignable(subnet, IPv4Address("10.0.10.7"))   # raises InvalidAddress if not
"""

from __future__ import annotations

from collections.abc import Container
from ipaddress import IPv4Address, IPv4Network

from fargo.local.ec2.errors import AddressExhausted, InvalidAddress

METADATA_ADDRESS = IPv4Address("169.254.170.2")  # ECS task metadata endpoint (v4)
RESERVED_HEAD = 4


def router_address(subnet: IPv4Network) -> IPv4Address:
    """The VPC router's address in ``subnet``: its base + 1, every interface's gateway."""
    return subnet.network_address + 1


def dns_address(vpc_cidr: IPv4Network) -> IPv4Address:
    """The VPC's DNS server: the VPC's base + 2."""
    return vpc_cidr.network_address + 2


def reserved_addresses(subnet: IPv4Network) -> frozenset[IPv4Address]:
    """The five addresses no interface may take in ``subnet``."""
    head = {subnet.network_address + i for i in range(RESERVED_HEAD)}
    return frozenset(head | {subnet.broadcast_address})


def check_assignable(subnet: IPv4Network, ip: IPv4Address) -> None:
    """Raise InvalidAddress unless an interface may take ``ip`` in ``subnet``."""
    if ip not in subnet:
        raise InvalidAddress(
            f"address {ip} is not in subnet {subnet}; choose an address inside the subnet"
        )
    if ip in reserved_addresses(subnet):
        raise InvalidAddress(
            f"address {ip} is reserved in subnet {subnet} (the first four and the last "
            f"address are the VPC's); use {subnet.network_address + RESERVED_HEAD} to "
            f"{subnet.broadcast_address - 1}"
        )


def last_usable(subnet: IPv4Network) -> IPv4Address:
    """The highest address an interface may take (where the VPC puts NAT gateways, away
    from addresses handed out from the bottom)."""
    return subnet.broadcast_address - 1


def first_free(subnet: IPv4Network, taken: Container[IPv4Address]) -> IPv4Address:
    """The lowest assignable address of ``subnet`` not in ``taken``; raises AddressExhausted."""
    reserved = reserved_addresses(subnet)
    for ip in subnet:
        if ip not in reserved and ip not in taken:
            return ip
    raise AddressExhausted(
        f"subnet {subnet} has no free address left; detach an interface or use a larger subnet"
    )
