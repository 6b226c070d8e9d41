"""Elastic network interfaces: a namespace of its own with one interface ``eth0``,
cabled by a veth pair to the VPC router.

The interface holds its address with the subnet's prefix but *no* prefix route; its
only routes are an on-link route to the subnet's router address (base + 1) and the
default route through it. So even traffic to a neighbour in the same subnet goes
through the router, where security groups are enforced, as in a VPC (which has no
real layer 2). The router's end of the pair carries the router address as a /32 and
a /32 route to the interface's address.

Most callers use `Vpc.attach_network_interface`, which also checks the address and
applies security groups; this module is the plumbing::

    ns = plug(router, "eni-0a1b2c3d", "task-1", IPv4Network("10.0.10.0/24"),
              IPv4Address("10.0.10.7"))
    ...
    unplug(router, "eni-0a1b2c3d", ns)
"""

from __future__ import annotations

import contextlib
import secrets
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

from fargo.local.ec2.addressing import router_address
from fargo.local.ec2.commands import ip_batch
from fargo.local.ec2.eni_files import EniFiles
from fargo.local.ec2.errors import Ec2Error
from fargo.local.ec2.link_state import wait_until_ready
from fargo.local.ec2.netns import NetworkNamespace

# AWS ENIs are IPv4-only unless given IPv6; keep eth0 free of link-local chatter.
ENI_SYSCTLS = {"net/ipv6/conf/default/disable_ipv6": "1"}
INTERFACE = "eth0"


def new_eni_id() -> str:
    return "eni-" + secrets.token_hex(4)


def router_link(eni_id: str) -> str:
    """The router's end of the interface's veth pair (≤ 15 characters, as Linux requires)."""
    return eni_id.replace("-", "")


def plug(
    router: NetworkNamespace,
    eni_id: str,
    name: str,
    subnet: IPv4Network,
    ip: IPv4Address,
    sysctls: Mapping[str, str] | None = None,
) -> NetworkNamespace:
    """A new namespace ``name`` whose ``eth0`` holds ``ip`` in ``subnet``, cabled to the
        router. Two execs: one ``ip`` batch in the router, one in the new namespace; returns
    once both ends of the veth pair carry packets (see `link_state`)."""
    gateway = router_address(subnet)
    link = router_link(eni_id)
    ns = NetworkNamespace.create(name, {**ENI_SYSCTLS, **(sysctls or {})})
    try:
        ip_batch(
            router,
            [
                f"link add {link} type veth peer name {INTERFACE} netns {ns.path}",
                f"link set {link} up",
                f"addr add {gateway}/32 dev {link} noprefixroute",
                f"route add {ip}/32 dev {link} src {gateway}",
            ],
        )
        ip_batch(
            ns,
            [
                f"addr add {ip}/{subnet.prefixlen} dev {INTERFACE} noprefixroute",
                f"link set {INTERFACE} up",
                f"route add {gateway}/32 dev {INTERFACE} scope link",
                f"route add default via {gateway} dev {INTERFACE}",
            ],
        )
        wait_until_ready(router, link)  # else the first packets may be dropped
        wait_until_ready(ns, INTERFACE)
    except BaseException:
        _delete_link(router, link)
        ns.close()
        raise
    return ns


def unplug(router: NetworkNamespace, eni_id: str, namespace: NetworkNamespace) -> None:
    """Remove the veth pair (processes still inside keep only ``lo``) and let go of the
    namespace; it vanishes once nothing else holds it."""
    _delete_link(router, router_link(eni_id))
    namespace.close()


def _delete_link(router: NetworkNamespace, link: str) -> None:
    if router.closed:
        return  # the router's namespace is gone, and its veth ends with it
    with contextlib.suppress(Ec2Error):  # never created, or already gone
        ip_batch(router, [f"link del {link}"])


@dataclass(eq=False)
class NetworkInterface:
    """An attached ENI: its id, subnet, address and the namespace it lives in."""

    id: str
    name: str
    subnet: IPv4Network
    ip: IPv4Address
    namespace: NetworkNamespace
    security_groups: tuple[str, ...] = ()
    files: EniFiles | None = None
    _release: Callable[[NetworkInterface], None] | None = field(default=None, repr=False)

    @property
    def gateway(self) -> IPv4Address:
        """The subnet's router address, the interface's default gateway."""
        return router_address(self.subnet)

    @property
    def router_link(self) -> str:
        return router_link(self.id)

    @property
    def attached(self) -> bool:
        return not self.namespace.closed

    def socket(
        self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM, proto: int = 0
    ) -> socket.socket:
        """A socket inside the interface's namespace (bind it to ``ip`` or connect out)."""
        return self.namespace.socket(family, type, proto)

    def command_prefix(self) -> list[str]:
        """argv prefix that runs a program inside the interface's namespace."""
        return self.namespace.command_prefix()

    def detach(self) -> None:
        """Detach from the VPC (as DetachNetworkInterface + delete): the address is free
        again and security groups forget it. Idempotent."""
        release, self._release = self._release, None
        if release is not None:
            release(self)
