"""The Internet Gateway and the twin's stand-in for the internet.

The internet is a namespace of its own on a documentation range (198.51.100.0/24 by
default), never the machine's real network: its only route is to that range, so
nothing there can reach a VPC address. The gateway is the router's interface ``igw``
to it (address: the range's base + 1) and does what AWS's gateway does for Elastic
IPs: 1:1 NAT between an interface's private address and its Elastic IP (nftables
``snat``/``dnat`` in the router, which holds every Elastic IP on ``igw`` so it answers
ARP for them). Elastic IPs are handed out from base + 2 upward; the internet
namespace's own address is the range's last usable one.

Usage::

    igw = InternetGateway(router, IPv4Network("198.51.100.0/24"))
    internet = igw.attach()                           # the internet namespace, cabled
    eip = igw.associate_address(IPv4Address("10.0.0.254"))   # 198.51.100.2
    internet.add_address(IPv4Address("198.51.100.10"))       # a server out there
    server = internet.socket(); server.bind(("198.51.100.10", 5000))
"""

from __future__ import annotations

import socket
import threading
from ipaddress import IPv4Address, IPv4Network

from fargo.local.ec2.commands import ip_batch, nft_load
from fargo.local.ec2.errors import AddressExhausted, InvalidAddress
from fargo.local.ec2.link_state import wait_until_ready
from fargo.local.ec2.netns import NetworkNamespace

LINK = "igw"
NAT_TABLE = "fargo_igw"
DEFAULT_INTERNET_CIDR = IPv4Network("198.51.100.0/24")  # TEST-NET-2 (RFC 5737)
QUIET_SYSCTLS = {"net/ipv6/conf/default/disable_ipv6": "1"}


class Internet:
    """The namespace standing in for the internet; servers there get addresses with
    `add_address` and sockets with `socket`."""

    def __init__(self, namespace: NetworkNamespace, gateway: InternetGateway) -> None:
        self.namespace = namespace
        self._gateway = gateway
        self.cidr = gateway.cidr
        self.address = self.cidr.broadcast_address - 1
        self._addresses = {self.address}

    def add_address(self, ip: IPv4Address) -> IPv4Address:
        """Give the internet side another address (idempotent); it must lie in the range
        and not be the gateway's or an Elastic IP."""
        if ip in self._addresses:
            return ip
        if ip not in self.cidr or ip in (self.cidr.network_address, self.cidr.broadcast_address):
            raise InvalidAddress(f"{ip} is not a host address of the internet range {self.cidr}")
        if ip in self._gateway.taken():
            raise InvalidAddress(
                f"{ip} belongs to the internet gateway or an Elastic IP; use another "
                f"address of {self.cidr}"
            )
        ip_batch(self.namespace, [f"addr add {ip}/32 dev eth0"])
        self._addresses.add(ip)
        return ip

    def socket(
        self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM, proto: int = 0
    ) -> socket.socket:
        return self.namespace.socket(family, type, proto)


class InternetGateway:
    """The router's way out: link ``igw``, its address, and the Elastic IP NAT table."""

    def __init__(self, router: NetworkNamespace, cidr: IPv4Network = DEFAULT_INTERNET_CIDR):
        if cidr.prefixlen > 29:
            raise InvalidAddress(f"the internet range {cidr} is too small; use a /29 or larger")
        self.router = router
        self.cidr = cidr
        self.address = cidr.network_address + 1
        self.elastic_ips: dict[IPv4Address, IPv4Address] = {}  # Elastic IP -> private address
        self._lock = threading.Lock()

    def taken(self) -> set[IPv4Address]:
        return {self.address, *self.elastic_ips}

    def attach(self) -> Internet:
        """Create the internet namespace and cable it to the router (one exec on each side)."""
        internet = NetworkNamespace.create("internet", QUIET_SYSCTLS)
        try:
            ip_batch(
                self.router,
                [
                    f"link add {LINK} type veth peer name eth0 netns {internet.path}",
                    f"addr add {self.address}/{self.cidr.prefixlen} dev {LINK}",
                    f"link set {LINK} up",
                ],
            )
            own = self.cidr.broadcast_address - 1
            ip_batch(
                internet, [f"addr add {own}/{self.cidr.prefixlen} dev eth0", "link set eth0 up"]
            )
            wait_until_ready(self.router, LINK)
            wait_until_ready(internet, "eth0")
            nft_load(self.router, self.render_nat())
        except BaseException:
            internet.close()
            raise
        return Internet(internet, self)

    def associate_address(self, private_ip: IPv4Address) -> IPv4Address:
        """Allocate an Elastic IP and map it 1:1 to ``private_ip`` (AssociateAddress)."""
        with self._lock:
            own = self.cidr.broadcast_address - 1
            free = (ip for ip in self.cidr.hosts() if ip not in self.taken() and ip != own)
            eip = next(free, None)
            if eip is None:
                raise AddressExhausted(f"no Elastic IP left in the internet range {self.cidr}")
            ip_batch(self.router, [f"addr add {eip}/32 dev {LINK}"])
            self.elastic_ips[eip] = private_ip
            nft_load(self.router, self.render_nat())
            return eip

    def render_nat(self) -> str:
        """The 1:1 NAT table: outbound from a private address leaves as its Elastic IP,
        inbound to the Elastic IP goes to the private address (and new inbound connections
        then meet the security-group table's drop for ``igw``)."""
        out = [f"table ip {NAT_TABLE}", f"delete table ip {NAT_TABLE}", f"table ip {NAT_TABLE} {{"]
        out += ["\tchain prerouting {", "\t\ttype nat hook prerouting priority dstnat;"]
        for eip, private in self.elastic_ips.items():
            out.append(f'\t\tiifname "{LINK}" ip daddr {eip} dnat to {private}')
        out += ["\t}", "\tchain postrouting {", "\t\ttype nat hook postrouting priority srcnat;"]
        for eip, private in self.elastic_ips.items():
            out.append(f'\t\toifname "{LINK}" ip saddr {private} snat to {eip}')
        out += ["\t}", "}"]
        return "\n".join(out) + "\n"
