"""The VPC's local counterpart: an address plan and a task launcher per network mode.

Loopback mode (the default, no root) maps the VPC onto 127.0.0.0/8: an address
``10.0.10.7`` in the VPC ``10.0.0.0/16`` becomes ``127.0.10.7``. Every task gets
its own address, so two tasks of one service both listen on their container
port, as with ``awsvpc``. As in a VPC subnet, the first four addresses and the
last of each subnet are reserved: the public load balancer takes ``.1`` of the
first public subnet (``127.0.0.1``, so ``localhost`` reaches it), the DNS server
``.2`` (where the Amazon DNS server sits in a VPC) and the task metadata
endpoint ``.3``.

Further internet-facing load balancers take free addresses of the public subnets,
internal ones free addresses of the private subnets.

A second mode (network namespaces, veth pairs, NAT) implements `NetworkMode` too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from fargo.spec import Spec

LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
PRIVILEGED_PORT_OFFSET = 8000
RESERVED_HEAD = 4  # network address, router, DNS, reserved — as in every VPC subnet
DNS_PORT = 8053


class AddressExhausted(RuntimeError):
    """A subnet has no free address left for another task."""


@dataclass(frozen=True)
class Placement:
    """Where a task runs: its subnet, Availability Zone index and private address."""

    subnet: ipaddress.IPv4Network
    zone: int
    ip: str


class NetworkMode(Protocol):
    """What the twin needs from a network: addresses, listener ports and a task launcher."""

    name: str

    def place_task(self) -> Placement: ...

    def release(self, ip: str) -> None: ...

    def load_balancer_address(self, name: str, scheme: str) -> str: ...

    def listener_port(self, port: int) -> int: ...

    def container_port(self, port: int) -> int: ...

    @property
    def dns_address(self) -> tuple[str, int]: ...

    @property
    def metadata_host(self) -> str: ...

    async def launch(
        self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, log: IO[bytes]
    ) -> asyncio.subprocess.Process: ...


@dataclass
class LoopbackNetwork:
    """Loopback mode: the VPC's subnets mapped into 127.0.0.0/8 on this host."""

    spec: Spec
    name: str = "loopback"
    _used: set[str] = field(default_factory=set)
    _next_zone: int = 0
    _lb_addresses: dict[str, str] = field(default_factory=dict)

    def to_loopback(self, address: ipaddress.IPv4Address) -> ipaddress.IPv4Address:
        """The loopback address standing for ``address`` of the VPC."""
        offset = int(address) - int(self.spec.network.cidr.network_address)
        return ipaddress.IPv4Address(int(LOOPBACK.network_address) + offset)

    def _local_subnet(self, subnet: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(
            f"{self.to_loopback(subnet.network_address)}/{subnet.prefixlen}"
        )

    def _reserved(self, subnet: ipaddress.IPv4Network, index: int) -> str:
        return str(self._local_subnet(subnet).network_address + index)

    @property
    def dns_address(self) -> tuple[str, int]:
        return self._reserved(self.spec.network.subnets.public[0], 2), DNS_PORT

    @property
    def metadata_host(self) -> str:
        return self._reserved(self.spec.network.subnets.public[0], 3)

    def place_task(self) -> Placement:
        """The next free address in the private subnets, spreading tasks over the zones."""
        private = self.spec.network.subnets.private
        for attempt in range(len(private)):
            zone = (self._next_zone + attempt) % len(private)
            ip = self._free_in(private[zone])
            if ip is not None:
                self._next_zone = (zone + 1) % len(private)
                return Placement(private[zone], zone, ip)
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

    def load_balancer_address(self, name: str, scheme: str) -> str:
        """Where a load balancer listens; the same name always gets the same address.

        The first internet-facing one takes the reserved ``.1`` of the first public
        subnet (``127.0.0.1`` for a VPC at ``10.0.0.0``, so ``localhost`` reaches it);
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

    def _free_in_any(self, subnets: Sequence[ipaddress.IPv4Network], kind: str) -> str:
        for subnet in subnets:
            ip = self._free_in(subnet)
            if ip is not None:
                return ip
        raise AddressExhausted(
            f"no free address left in the {kind} subnets ({', '.join(map(str, subnets))})"
        )

    def listener_port(self, port: int) -> int:
        """Privileged ports (443, 80) move up by 8000 so no root is needed: 443 → 8443."""
        return port + PRIVILEGED_PORT_OFFSET if port < 1024 else port

    def container_port(self, port: int) -> int:
        """A task's port: as in the spec, unless it is privileged and we are not root."""
        return port + PRIVILEGED_PORT_OFFSET if port < 1024 and not is_root() else port

    async def launch(
        self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, log: IO[bytes]
    ) -> asyncio.subprocess.Process:
        """A task as a process group of its own, output to its log file, no stdin."""
        return await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )


def network_for(spec: Spec, mode: str = "loopback") -> NetworkMode:
    if mode == "loopback":
        return LoopbackNetwork(spec)
    raise ValueError(f"network mode {mode!r} is not available; use 'loopback'")


def is_root() -> bool:
    return os.geteuid() == 0
