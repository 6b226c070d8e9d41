"""The VPC: a routed network of namespaces, built from a layout.

A VPC has no real layer 2: every packet is routed by the VPC router, which is also
where security groups are enforced. So the twin's VPC is a ``router`` namespace with
one veth pair per network interface (ENI), policy routing for the route tables, the
internet gateway to an ``internet`` namespace on a documentation range, NAT gateways
in the public subnets, and the addresses the VPC itself serves (DNS at base + 2, task
metadata at 169.254.170.2) on the router, where a server socket made with
``vpc.router.socket()`` answers every interface.

Everything lives in namespaces held by descriptors of this process: `close()` (or the
process's death) makes it vanish; nothing is added to the host's network namespace.
Unprivileged, call `enter_user_namespace()` first (see `namespaces`).

Usage::

    layout = VpcLayout(IPv4Network("10.0.0.0/16"),
                       public_subnets=(IPv4Network("10.0.0.0/24"), IPv4Network("10.0.1.0/24")),
                       private_subnets=(IPv4Network("10.0.10.0/24"), IPv4Network("10.0.11.0/24")))
    with Vpc(layout, [SecurityGroup("app")]).start() as vpc:
        eni = vpc.attach_network_interface(IPv4Network("10.0.10.0/24"), security_groups=["app"])
        argv = [*eni.command_prefix(), "python", "-m", "app"]
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from fargo.local.ec2 import eni as enis
from fargo.local.ec2.addressing import (
    METADATA_ADDRESS,
    check_assignable,
    dns_address,
    first_free,
    last_usable,
)
from fargo.local.ec2.commands import ip_batch
from fargo.local.ec2.eni_files import write_eni_files
from fargo.local.ec2.errors import AddressInUse, InvalidSubnet, VpcClosed
from fargo.local.ec2.internet_gateway import Internet, InternetGateway
from fargo.local.ec2.layout import VpcLayout
from fargo.local.ec2.nat_gateway import NAT_SYSCTLS, NatGateway, create_nat_gateway
from fargo.local.ec2.netns import NetworkNamespace
from fargo.local.ec2.route_tables import NatTarget, RouteTable, plan_route_tables, render_routing
from fargo.local.ec2.security_groups import SecurityGroup, SecurityGroupTable

ROUTER_SYSCTLS = {
    "net/ipv4/ip_forward": "1",
    "net/ipv4/conf/all/rp_filter": "0",
    "net/ipv4/conf/default/rp_filter": "0",
    "net/ipv4/conf/all/send_redirects": "0",
    "net/ipv4/conf/default/send_redirects": "0",
    "net/ipv6/conf/default/disable_ipv6": "1",
    # A connection to an address whose ENI is gone (a task just stopped) is refused at
    # once, not left to time out: callers retry elsewhere, as on loopback.
    "net/ipv4/icmp_ratelimit": "0",
}


@dataclass
class _Parts:
    router: NetworkNamespace
    internet_gateway: InternetGateway
    internet: Internet | None = None
    security_groups: SecurityGroupTable | None = None


class Vpc:
    """A VPC of this process: `start` builds it, `attach_network_interface` adds ENIs,
    `close` removes everything (idempotent, also after a failed start)."""

    def __init__(self, layout: VpcLayout, security_groups: Sequence[SecurityGroup] = ()) -> None:
        self.layout = layout
        self.cidr = layout.cidr
        self.dns_address = dns_address(layout.cidr)
        self.metadata_address = METADATA_ADDRESS
        self.nat_gateways: list[NatGateway] = []
        self.route_tables: list[RouteTable] = []
        self._initial_groups = tuple(security_groups)
        self._parts: _Parts | None = None
        self._enis: dict[IPv4Address, enis.NetworkInterface | None] = {}
        self._closed = False
        self._lock = threading.Lock()

    def validate(self) -> None:
        """Check the layout (fast, no side effects); raises InvalidVpcLayout."""
        self.layout.validate()

    def start(self) -> Vpc:
        """Build router, internet, security groups, NAT gateways and route tables."""
        self.validate()
        if self._parts is not None or self._closed:
            raise VpcClosed("a Vpc starts once; create a new one")
        try:
            router = NetworkNamespace.create("router", ROUTER_SYSCTLS)
            parts = self._parts = _Parts(router, InternetGateway(router, self.layout.internet_cidr))
            parts.internet = parts.internet_gateway.attach()
            parts.security_groups = SecurityGroupTable(
                router, self.cidr, [self.dns_address, self.metadata_address]
            )
            parts.security_groups.apply(self._initial_groups)
            for zone in range(self.layout.nat_gateways):
                subnet = self.layout.public_subnets[zone]
                nat_eni = self.attach_network_interface(
                    subnet, last_usable(subnet), name=f"nat-{zone}", sysctls=NAT_SYSCTLS
                )
                self.nat_gateways.append(
                    create_nat_gateway(nat_eni, parts.internet_gateway, self.cidr)
                )
            targets = [NatTarget(n.private_ip, n.eni.router_link) for n in self.nat_gateways]
            self.route_tables = plan_route_tables(
                self.layout.public_subnets, self.layout.private_subnets, targets
            )
            own = [f"addr add {a}/32 dev lo" for a in (self.dns_address, self.metadata_address)]
            ip_batch(router, own + render_routing(self.cidr, self.route_tables))
        except BaseException:
            self.close()
            raise
        return self

    @property
    def router(self) -> NetworkNamespace:
        """The router's namespace: ``router.socket()`` serves the DNS and metadata addresses."""
        return self._running().router

    @property
    def internet(self) -> Internet:
        internet = self._running().internet
        assert internet is not None
        return internet

    @property
    def internet_gateway(self) -> InternetGateway:
        return self._running().internet_gateway

    @property
    def security_groups(self) -> SecurityGroupTable:
        table = self._running().security_groups
        assert table is not None
        return table

    @property
    def network_interfaces(self) -> list[enis.NetworkInterface]:
        """Every attached interface, the NAT gateways' included."""
        return [eni for eni in self._enis.values() if eni is not None]

    def attach_network_interface(
        self,
        subnet: IPv4Network,
        ip: IPv4Address | None = None,
        *,
        name: str | None = None,
        security_groups: Sequence[str] = (),
        etc_dir: Path | None = None,
        search: Sequence[str] = (),
        hostname: str | None = None,
        sysctls: Mapping[str, str] | None = None,
    ) -> enis.NetworkInterface:
        """Create an ENI in ``subnet`` at ``ip`` (the lowest free address when None): a new
        namespace whose ``eth0`` is cabled to the router, member of ``security_groups``;
        with ``etc_dir``, its ``resolv.conf`` (searching ``search``) and ``hosts`` are
        written there. Raises InvalidSubnet, InvalidAddress, AddressInUse,
        AddressExhausted, InvalidSecurityGroup or CommandFailed; nothing is left behind."""
        parts = self._running()
        assert parts.security_groups is not None
        if subnet not in self.layout.subnets:
            raise InvalidSubnet(
                f"subnet {subnet} is not a subnet of VPC {self.cidr} "
                f"(its subnets: {', '.join(map(str, self.layout.subnets))})"
            )
        parts.security_groups.check_known(security_groups)
        with self._lock:
            if ip is None:
                ip = first_free(subnet, self._enis)
            check_assignable(subnet, ip)
            if ip in self._enis:
                holder = self._enis[ip]
                raise AddressInUse(
                    f"address {ip} is already in use by "
                    f"{holder.id if holder else 'an interface being attached'}; "
                    "choose another address or detach that interface first"
                )
            self._enis[ip] = None  # reserved while plumbing
        eni_id = enis.new_eni_id()
        try:
            namespace = enis.plug(parts.router, eni_id, name or eni_id, subnet, ip, sysctls)
        except BaseException:
            with self._lock:
                self._enis.pop(ip, None)
            raise
        eni = enis.NetworkInterface(
            eni_id, name or eni_id, subnet, ip, namespace, tuple(security_groups)
        )
        with self._lock:
            if self._closed:  # closed while we were plumbing
                namespace.close()
                raise VpcClosed("the VPC was closed while the interface was being attached")
            self._enis[ip] = eni
            eni._release = self._release
        try:
            if etc_dir is not None:
                eni.files = write_eni_files(
                    etc_dir, ip, nameserver=self.dns_address, search=search, hostname=hostname
                )
            for group in security_groups:
                parts.security_groups.add_member(group, ip)
        except BaseException:
            eni.detach()
            raise
        return eni

    def close(self) -> None:
        """Remove everything, newest first; idempotent and safe after a failed start.
        Closing the namespaces is enough: their links, routes and tables go with them."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            attached = [eni for eni in self._enis.values() if eni is not None]
            self._enis.clear()
        for eni in reversed(attached):
            eni._release = None
            eni.namespace.close()
        parts, self._parts = self._parts, None
        if parts is not None:
            if parts.internet is not None:
                parts.internet.namespace.close()
            parts.router.close()

    def __enter__(self) -> Vpc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _running(self) -> _Parts:
        if self._parts is None or self._closed:
            raise VpcClosed("the VPC is not running: start() it first (or it was closed)")
        return self._parts

    def _release(self, eni: enis.NetworkInterface) -> None:
        with self._lock:
            parts = self._parts
        try:
            if parts is None:
                eni.namespace.close()
                return
            if parts.security_groups is not None:
                for group in eni.security_groups:
                    if group in {g.name for g in parts.security_groups.groups}:
                        parts.security_groups.remove_member(group, eni.ip)
            enis.unplug(parts.router, eni.id, eni.namespace)
        finally:
            # Only now is the address free: its /32 route and group membership are gone, so
            # an interface attached next at the same address finds nothing of this one.
            with self._lock:
                if self._enis.get(eni.ip) is eni:
                    del self._enis[eni.ip]
