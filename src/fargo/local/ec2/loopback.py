"""Loopback mode: the VPC mapped onto 127.0.0.0/8 of this host, no privileges needed.

A VPC address keeps its last three octets and trades its first for 127: ``10.0.10.7``
becomes ``127.0.10.7``, ``10.4.10.7`` becomes ``127.4.10.7`` (and ``172.20.1.7`` is
``127.20.1.7``, ``192.168.1.7`` is ``127.168.1.7``). A VPC is a /16 or smaller, so its
addresses stay distinct, and twins of VPCs that differ in the second octet (or below)
get addresses, DNS server and metadata endpoint of their own and run side by side.
Only VPCs that share their last three octets (``10.20.0.0/16`` and ``172.20.0.0/16``)
would share 127.x addresses: `fargo.local.twins` refuses the second one.

Every task gets its own address, so two tasks of one service both listen on their
container port, as with ``awsvpc``. As in a VPC subnet, the first four addresses and the
last of each subnet are reserved: the public load balancer takes ``.1`` of the first
public subnet (``127.0.0.1`` for ``10.0.0.0/16``, so ``localhost`` reaches it); the DNS
server answers at the VPC's base + 2 (where the Amazon DNS server sits in a VPC,
``127.0.0.2``) and the task metadata endpoint at base + 3. Further internet-facing load
balancers take free addresses of the public subnets, internal ones free addresses of
the private subnets.

Privileged ports move up by 8000 (``443 → 8443``) unless ``published_ports`` names the
host port for a listener. Tasks resolve the twin's names through a ``sitecustomize``
resolver on their ``PYTHONPATH`` (`fargo.local.cloudmap.resolver`): without a network
namespace there is no ``/etc/resolv.conf`` of their own. The same module makes a Python
server's bind to ``0.0.0.0`` a bind to the task's own address (a program in another
language binds ``$HOST``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from fargo.local.cloudmap.resolver import BIND_ADDRESS_VARIABLE, task_environment
from fargo.local.ec2.network import (
    AddressExhausted,
    LoadBalancerHost,
    NetworkInterface,
    Origin,
    SocketFactory,
    new_eni_id,
)
from fargo.local.ec2.sockets import bind_socket, connect
from fargo.local.ecs.process import spawn_task
from fargo.spec import Spec

LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
HOST_BITS = 0x00FFFFFF  # the last three octets: what a VPC address keeps on loopback
PRIVILEGED_PORT_OFFSET = 8000
RESERVED_HEAD = 4  # network address, router, DNS, reserved — as in every VPC subnet
DNS_PORT = 8053


def to_loopback(address: ipaddress.IPv4Address) -> ipaddress.IPv4Address:
    """The loopback address standing for a VPC address: 127 and its last three octets."""
    return ipaddress.IPv4Address(int(LOOPBACK.network_address) | (int(address) & HOST_BITS))


def loopback_network(network: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
    """Where a VPC or subnet (a /8 or smaller) lies in 127.0.0.0/8."""
    return ipaddress.IPv4Network(f"{to_loopback(network.network_address)}/{network.prefixlen}")


def from_loopback(
    address: ipaddress.IPv4Address, vpc: ipaddress.IPv4Network
) -> ipaddress.IPv4Address:
    """The address of ``vpc`` that ``address`` (a loopback address) stands for."""
    first_octet = int(vpc.network_address) & ~HOST_BITS & 0xFFFFFFFF
    return ipaddress.IPv4Address(first_octet | (int(address) & HOST_BITS))


class LoopbackNetwork:
    """Loopback mode: the VPC's subnets mapped into 127.0.0.0/8 on this host."""

    mode = "loopback"
    name = "VPC network (loopback mode)"
    separate_load_balancers = False  # one Caddy serves every load balancer

    def __init__(self, spec: Spec, *, published_ports: Mapping[int, int] | None = None) -> None:
        self.spec = spec
        self.published_ports = dict(published_ports or {})
        self._used: set[str] = set()
        self._next_zone = 0
        self._lb_addresses: dict[str, str] = {}
        self._registry_host: str | None = None

    # -- lifecycle: nothing to build, the addresses are the host's -----------------------

    def validate(self) -> list[str]:
        listeners = {
            listener.port for lb in self.spec.load_balancers.values() for listener in lb.listeners
        }
        return [
            f"--publish {port}:{host}: the spec has no listener on port {port} "
            f"(listeners: {', '.join(map(str, sorted(listeners))) or 'none'})"
            for port, host in self.published_ports.items()
            if port not in listeners
        ]

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def reconfigure(self, spec: Spec) -> None:
        """A new spec of the same network (`fargo up` on a running twin): nothing to
        rebuild; new tasks' addresses come from the same subnets."""
        self.spec = spec

    # -- addresses ------------------------------------------------------------------------

    def to_loopback(self, address: ipaddress.IPv4Address) -> ipaddress.IPv4Address:
        """The loopback address standing for ``address`` of the VPC."""
        return to_loopback(address)

    def _local_subnet(self, subnet: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
        return loopback_network(subnet)

    def _reserved(self, subnet: ipaddress.IPv4Network, index: int) -> str:
        return str(self._local_subnet(subnet).network_address + index)

    @property
    def dns_address(self) -> tuple[str, int]:
        """The VPC's base + 2, as the Amazon DNS server's (and VPC mode's)."""
        return self._reserved(self.spec.network.cidr, 2), DNS_PORT

    @property
    def metadata_address(self) -> tuple[str, int]:
        """The VPC's base + 3 (reserved in a VPC's first subnet), any free port."""
        return self._reserved(self.spec.network.cidr, 3), 0

    @property
    def xray_daemon_address(self) -> tuple[str, int]:
        """The metadata endpoint's address, any free UDP port."""
        return self._reserved(self.spec.network.cidr, 3), 0

    @property
    def registry_address(self) -> tuple[str, int]:
        """The registry endpoint: a free address of the public subnets, any free port."""
        if self._registry_host is None:
            self._registry_host = self._free_in_any(self.spec.network.subnets.public, "public")
        return self._registry_host, 0

    @property
    def registry_endpoint_addresses(self) -> tuple[tuple[str, int], ...]:
        """None: loopback mode has no subnets to route, so VPC endpoints change nothing."""
        return ()

    def registry_address_for(self, eni: NetworkInterface) -> tuple[str, int]:
        return self.registry_address

    def server_socket(self, kind: socket.SocketKind, host: str, port: int) -> socket.socket:
        return bind_socket(kind, host, port)

    def load_balancer_host(self, name: str) -> LoadBalancerHost:
        return LoadBalancerHost()

    async def attach_network_interface(self, service: str, description: str) -> NetworkInterface:
        return self.place_task()

    async def detach_network_interface(self, eni: NetworkInterface) -> None:
        self.release(eni.ip)

    def place_task(self) -> NetworkInterface:
        """An ENI at the next free address of the private subnets, spreading over the zones."""
        private = self.spec.network.subnets.private
        for attempt in range(len(private)):
            zone = (self._next_zone + attempt) % len(private)
            ip = self._free_in(private[zone])
            if ip is not None:
                self._next_zone = (zone + 1) % len(private)
                vpc_ip = from_loopback(ipaddress.IPv4Address(ip), self.spec.network.cidr)
                return NetworkInterface(new_eni_id(), private[zone], zone, str(vpc_ip), ip)
        raise AddressExhausted(
            f"no free address left in the private subnets "
            f"({', '.join(map(str, private))}) for another task; widen them in the spec"
        )

    def _free_in(self, subnet: ipaddress.IPv4Network) -> str | None:
        local = self._local_subnet(subnet)
        for host in range(RESERVED_HEAD, local.num_addresses - 1):
            ip = str(local.network_address + host)
            if ip not in self._used:
                self._used.add(ip)
                return ip
        return None

    def release(self, ip: str) -> None:
        self._used.discard(ip)

    def reserve(self, ips: set[str]) -> None:
        """Give no task these addresses (a previous run's tasks still listen there)."""
        self._used |= ips

    def load_balancer_address(self, name: str, scheme: str) -> str:
        """Where a load balancer listens; the same name always gets the same address.

        The first internet-facing one takes the reserved ``.1`` of the first public
        subnet (``127.0.0.1`` for a subnet at ``10.0.0.0``, so ``localhost`` reaches it);
        further internet-facing ones a free address of the public subnets; internal
        ones a free address of the private subnets.
        """
        if name not in self._lb_addresses:
            subnets = self.spec.network.subnets
            reserved = self._reserved(subnets.public[0], 1)
            if scheme != "internet-facing":
                address = self.place_task().ip
            elif reserved not in self._lb_addresses.values():
                address = reserved
            else:
                address = self._free_in_any(subnets.public, "public")
            self._lb_addresses[name] = address
        return self._lb_addresses[name]

    def load_balancer_dns_address(self, name: str) -> str:
        return self._lb_addresses[name]

    def _free_in_any(self, subnets: Sequence[ipaddress.IPv4Network], kind: str) -> str:
        for subnet in subnets:
            ip = self._free_in(subnet)
            if ip is not None:
                return ip
        raise AddressExhausted(
            f"no free address left in the {kind} subnets ({', '.join(map(str, subnets))})"
        )

    # -- ports ----------------------------------------------------------------------------

    def listener_port(self, load_balancer: str, port: int) -> int:
        """The published host port, else privileged ports up by 8000 so no root is needed."""
        if port in self.published_ports:
            return self.published_ports[port]
        return port + PRIVILEGED_PORT_OFFSET if port < 1024 else port

    def container_port(self, port: int) -> int:
        """A task's port: as in the spec, unless it is privileged and we are not root."""
        return port + PRIVILEGED_PORT_OFFSET if port < 1024 and not is_root() else port

    # -- tasks ----------------------------------------------------------------------------

    def task_environment(
        self, eni: NetworkInterface, *, zones: Sequence[str], pythonpath: str
    ) -> dict[str, str]:
        """The ``sitecustomize`` resolver: the twin's zones answered by its DNS server, and
        a bind to ``0.0.0.0`` made on the task's own address."""
        environment = task_environment(self.dns_address, zones, pythonpath=pythonpath)
        return {**environment, BIND_ADDRESS_VARIABLE: eni.ip}

    async def launch(
        self,
        argv: Sequence[str],
        *,
        eni: NetworkInterface,
        port: int,
        env: Mapping[str, str],
        cwd: Path,
        log: IO[bytes],
    ) -> asyncio.subprocess.Process:
        """A task as a process group of its own, output to its log file, no stdin.

        Loopback addresses are not a task's own as an ENI is: another twin or process
        may hold one, and the task would then seem to listen when it does not."""
        ensure_free(eni.ip, port)
        return await spawn_task(argv, env=env, cwd=cwd, log=log)

    async def open_connection(
        self, host: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(host, port)

    def socket_factory(self, origin: Origin) -> SocketFactory | None:
        return None  # the host's own sockets reach every address

    async def connect_from(self, eni: NetworkInterface, host: str, port: int) -> socket.socket:
        return await connect(socket.socket(socket.AF_INET, socket.SOCK_STREAM), host, port)


def ensure_free(host: str, port: int) -> None:
    """Raise `OSError` naming ``host:port`` if something listens there already.

    Loopback addresses are not a task's own as an ENI is: another twin or process may
    hold one, and a task would then seem to listen when it does not.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            raise OSError(
                err.errno,
                f"{host}:{port} is in use by another process ({err.strerror}); "
                "is another twin running?",
            ) from None


def is_root() -> bool:
    return os.geteuid() == 0
