"""NAT Gateways: how a private subnet reaches the internet.

A NAT gateway is an interface of its own in a public subnet (a namespace whose default
route is the VPC router) that forwards and masquerades traffic from the VPC to its own
private address; the router's public route table sends that out of the internet
gateway, which maps the private address 1:1 to the NAT gateway's Elastic IP. So a
server on the internet sees the Elastic IP, and nothing from outside can open a
connection inward.

Usage (the VPC does this for each NAT gateway of its layout)::

    eni = vpc.attach_network_interface(public_subnet, ip, sysctls=NAT_SYSCTLS)
    nat = create_nat_gateway(eni, vpc.internet_gateway, vpc.cidr)
    nat.private_ip, nat.elastic_ip      # 10.0.0.254, 198.51.100.2
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from fargo.local.ec2.commands import nft_load
from fargo.local.ec2.eni import NetworkInterface
from fargo.local.ec2.internet_gateway import InternetGateway

MASQUERADE_TABLE = "fargo_nat"
# Forward, and never tell a sender to go elsewhere: packets arrive and leave on eth0.
NAT_SYSCTLS = {
    "net/ipv4/ip_forward": "1",
    "net/ipv4/conf/all/send_redirects": "0",
    "net/ipv4/conf/default/send_redirects": "0",
    "net/ipv4/conf/all/rp_filter": "0",
    "net/ipv4/conf/default/rp_filter": "0",
}


@dataclass(eq=False)
class NatGateway:
    """A running NAT gateway: its interface (in a public subnet) and its Elastic IP."""

    id: str
    eni: NetworkInterface
    elastic_ip: IPv4Address

    @property
    def subnet(self) -> IPv4Network:
        return self.eni.subnet

    @property
    def private_ip(self) -> IPv4Address:
        return self.eni.ip


def render_masquerade(vpc_cidr: IPv4Network) -> str:
    """Masquerade what comes from the VPC and leaves for outside it."""
    return (
        f"table ip {MASQUERADE_TABLE} {{\n"
        "\tchain postrouting {\n"
        "\t\ttype nat hook postrouting priority srcnat;\n"
        f'\t\toifname "eth0" ip saddr {vpc_cidr} ip daddr != {vpc_cidr} masquerade\n'
        "\t}\n"
        "}\n"
    )


def create_nat_gateway(
    eni: NetworkInterface, gateway: InternetGateway, vpc_cidr: IPv4Network
) -> NatGateway:
    """Turn an interface attached with `NAT_SYSCTLS` into a NAT gateway with an Elastic IP."""
    nft_load(eni.namespace, render_masquerade(vpc_cidr))
    elastic_ip = gateway.associate_address(eni.ip)
    return NatGateway(id="nat-" + secrets.token_hex(8), eni=eni, elastic_ip=elastic_ip)
