"""The VPC's local counterpart, as the rest of the twin sees it: a network mode.

A network mode is one of the twin's parts (validate, start, stop) and answers what the
other parts need of a VPC:

- **ENIs.** ``await network.attach_network_interface("task 3f2a…")`` gives a task its
  network interface in a private subnet, as ECS does while a task is PROVISIONING; it
  can fail (`NetworkInterfaceAttachmentError`: no free address, …), and then the task
  stops before it ran. ``launch`` runs the task's process *in* that interface;
  ``detach_network_interface`` gives the address back when the task has stopped.
- **Addresses and ports** of the parts the VPC hosts: load balancers, the DNS server
  (VPC base + 2, as the Amazon DNS server), the task metadata endpoint; listener and
  container ports as this machine can bind them.
- **Name resolution inside tasks** (`task_environment`): whatever the mode needs so a
  task resolves discovery and load balancer names with ordinary code.
- **Where probes come from** (`open_connection`, `socket_factory`): health checks and
  readiness probes originate on the load balancer's side of the network, as on AWS.

`fargo.local.ec2.loopback` is the mode that needs no privileges.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal, Protocol

from fargo.local.ec2.sockets import ServerSocketFactory, bind_socket

if TYPE_CHECKING:
    from fargo.local.config import TwinConfig
    from fargo.spec import Spec

# (load balancer, listener port of the spec) → the port it is served on
ListenerPort = Callable[[str, int], int]
SocketFactory = Callable[[tuple[int, int, int, str, tuple[str, int]]], socket.socket]


class NetworkInterfaceAttachmentError(RuntimeError):
    """An ENI could not be attached (ECS: the task stops while PROVISIONING)."""


class AddressExhausted(NetworkInterfaceAttachmentError):
    """A subnet has no free address left for another ENI."""


def new_eni_id() -> str:
    """``eni-`` and 17 hex digits, like an EC2 network interface id."""
    return "eni-" + secrets.token_hex(9)[:17]


@dataclass(frozen=True)
class NetworkInterface:
    """An ENI: its subnet and Availability Zone, its private address in the VPC, and the
    address this machine reaches it at (the same in VPC mode; 127.x in loopback mode)."""

    id: str
    subnet: ipaddress.IPv4Network
    zone: int
    private_ip: str
    ip: str


Origin = Literal["load-balancer", "task"]


@dataclass(frozen=True)
class LoadBalancerHost:
    """Where a load balancer's data plane runs: the argv prefix that starts a process
    there, where its listeners are bound, and where it finds sockets on its loopback."""

    command_prefix: Callable[[], Sequence[str]] = tuple  # asked when the process starts
    open_listener: ServerSocketFactory = bind_socket
    open_local: ServerSocketFactory = bind_socket
    # an internet-facing load balancer in VPC mode: its ENI address, where its listeners
    # are bound as well (for clients inside the VPC), and how
    inside: tuple[str, ServerSocketFactory] | None = None
    # whether the data plane, where it runs, can bind a listener added to a running twin
    # itself (where ``open_listener`` binds): not when its listeners are on this machine's
    # network and it runs in an ENI
    binds_new_listeners: bool = True


class NetworkMode(Protocol):
    """What the twin needs from its network."""

    @property
    def mode(self) -> str:
        """``loopback`` or ``vpc``: what `fargo status` shows."""
        ...

    @property
    def name(self) -> str: ...

    def validate(self) -> list[str]: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def reconfigure(self, spec: Spec) -> None:
        """Take a new spec of the same network (its security groups, services)."""
        ...

    # -- ENIs ---------------------------------------------------------------------------

    async def attach_network_interface(self, service: str, description: str) -> NetworkInterface:
        """A task's ENI in a private subnet, in ``service``'s security group."""
        ...

    async def detach_network_interface(self, eni: NetworkInterface) -> None: ...

    # -- addresses and ports of what the VPC hosts ----------------------------------------

    def load_balancer_address(self, name: str, scheme: str) -> str:
        """Where the load balancer's listeners are bound (host-facing ones: on the host)."""
        ...

    def load_balancer_dns_address(self, name: str) -> str:
        """What the load balancer's DNS name resolves to for tasks."""
        ...

    def listener_port(self, load_balancer: str, port: int) -> int: ...

    def container_port(self, port: int) -> int: ...

    @property
    def dns_address(self) -> tuple[str, int]: ...

    @property
    def metadata_address(self) -> tuple[str, int]: ...

    @property
    def xray_daemon_address(self) -> tuple[str, int]:
        """Where the control plane receives X-Ray segments (UDP) that tasks send."""
        ...

    @property
    def registry_address(self) -> tuple[str, int]: ...

    @property
    def registry_endpoint_addresses(self) -> tuple[tuple[str, int], ...]:
        """Where VPC interface endpoints (``ecr.dkr``) front the registry, one per zone."""
        ...

    def registry_address_for(self, eni: NetworkInterface) -> tuple[str, int]:
        """Where a task's image pull goes: its zone's registry endpoint, as the registry's
        name resolves with private DNS, else `registry_address`."""
        ...

    def server_socket(self, kind: socket.SocketKind, host: str, port: int) -> socket.socket:
        """A bound (listening, for TCP) socket where ``host`` is: a `ServerSocketFactory`."""
        ...

    @property
    def separate_load_balancers(self) -> bool:
        """Whether each load balancer gets a data plane of its own (in its own ENI)."""
        ...

    def load_balancer_host(self, name: str) -> LoadBalancerHost: ...

    # -- tasks ----------------------------------------------------------------------------

    def task_environment(
        self, eni: NetworkInterface, *, zones: Sequence[str], pythonpath: str
    ) -> dict[str, str]: ...

    async def launch(
        self,
        argv: Sequence[str],
        *,
        eni: NetworkInterface,
        port: int,
        env: Mapping[str, str],
        cwd: Path,
        log: IO[bytes],
    ) -> asyncio.subprocess.Process: ...

    async def open_connection(
        self, host: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A readiness probe's connection to a task, made from the task's own side."""
        ...

    def socket_factory(self, origin: Origin) -> SocketFactory | None:
        """Sockets for health checks: from the load balancer that forwards to the target,
        or from inside the task (a container health check)."""
        ...

    async def connect_from(self, eni: NetworkInterface, host: str, port: int) -> socket.socket:
        """A socket connected to ``host:port`` from ``eni`` (an image pull, say)."""
        ...


def network_for(spec: Spec, config: TwinConfig) -> NetworkMode:
    """The network mode ``config`` asks for."""
    from fargo.local.ec2.loopback import LoopbackNetwork
    from fargo.local.ec2.vpc_mode import VpcNetwork

    if config.network_mode == "loopback":
        return LoopbackNetwork(spec, published_ports=config.published_ports)
    if config.network_mode == "vpc":
        return VpcNetwork(spec, state_dir=config.state_dir, published_ports=config.published_ports)
    raise ValueError(f"network mode {config.network_mode!r}: choose it first (ec2.modes)")
