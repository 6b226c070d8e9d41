"""VPC mode: the twin's network is a VPC made of network namespaces.

`fargo.local.ec2.vpc.Vpc` builds the network (a router namespace with AWS's route
tables, an Internet Gateway into an "internet" namespace on a documentation range, NAT
gateways, security groups in nftables); this module is the `NetworkMode` the rest of
the twin uses on it:

- every task gets an ENI of its own in a private subnet (round robin over the zones),
  in its service's security group; it runs in that namespace with its own
  ``/etc/resolv.conf`` and ``/etc/hosts`` (a private mount namespace) pointing at the
  VPC's DNS server at base + 2, and binds its real container port on ``0.0.0.0``;
- every load balancer gets an ENI (internet-facing: a public subnet; internal: a
  private one) and a Caddy of its own running in it; internet-facing listeners are
  also bound on the host's loopback, where a browser reaches them; internal ones only
  inside the VPC;
- the DNS server (base + 2, port 53) and the task metadata endpoint (169.254.170.2:80)
  are sockets of the control plane made in the router's namespace; the ECR endpoint is
  one made on the internet side (198.51.100.10:5000), so an image pull from a private
  subnet crosses the NAT gateway;
- with an ``ecr.dkr`` VPC endpoint in the spec, each private subnet also gets the
  endpoint's ENI (the subnet's last usable address, in a security group admitting the
  registry port from the services' groups only), where the registry serves as well; a
  task pulls from its zone's endpoint, as private DNS would send it, so the pull never
  crosses the NAT gateway and works without one. The other endpoints need nothing here:
  the twin's registry needs no token (``ecr.api``) and serves layers itself (``s3``), and
  the control plane writes the tasks' logs (``logs``);
- health checks come from the load balancer's ENI, readiness probes and container
  health checks from inside the task, image pulls from the task's ENI.

Unprivileged, the control plane first enters a user namespace of its own
(`fargo.local.ec2.namespaces.enter_user_namespace`); nothing is added to the host's
network namespace, and everything vanishes with the processes that hold it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import shutil
import socket
from collections.abc import Mapping, Sequence
from ipaddress import IPv4Network
from pathlib import Path
from typing import IO

from fargo.local.ec2 import security_groups as sg
from fargo.local.ec2.addressing import last_usable
from fargo.local.ec2.commands import find_tool
from fargo.local.ec2.eni import NetworkInterface as VpcInterface
from fargo.local.ec2.errors import Ec2Error
from fargo.local.ec2.layout import VpcLayout
from fargo.local.ec2.namespaces import in_own_user_namespace, user_namespaces_available
from fargo.local.ec2.netns import NetworkNamespace
from fargo.local.ec2.network import (
    LoadBalancerHost,
    NetworkInterface,
    NetworkInterfaceAttachmentError,
    Origin,
    SocketFactory,
)
from fargo.local.ec2.sockets import bind_socket, connect, listen_on
from fargo.local.ec2.vpc import Vpc
from fargo.local.ecs.process import spawn_task
from fargo.spec import Spec
from fargo.spec.security import (
    ANYWHERE,
    forwarding_load_balancers,
    ingress_rules,
    load_balancer_group,
    security_group_names,
    service_group,
)

DNS_PORT = 53
METADATA_PORT = 80
XRAY_DAEMON_PORT = 2000  # the X-Ray daemon's, as in a task next to its sidecar
REGISTRY_PORT = 5000
REGISTRY_OFFSET = 10  # the ECR endpoint's address in the internet range: 198.51.100.10
# The interface endpoint the twin models: ECR's registry, where image pulls go.
REGISTRY_ENDPOINT = "ecr.dkr"
ENDPOINTS_GROUP = "vpc-endpoints"
PRIVILEGED_PORT_OFFSET = 8000
TOOLS = ("ip", "nft", "nsenter", "unshare", "mount", "sh")
# Runs in the task's new mount namespace: its own resolv.conf and hosts, then the task.
MOUNT_ETC = (
    'mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/hosts && shift 2 && exec "$@"'
)


def vpc_mode_unavailable() -> str | None:
    """Why VPC mode cannot run here (tools, kernel), or None."""
    for tool in TOOLS:
        try:
            find_tool(tool)
        except Ec2Error as err:
            return str(err)
    if os.geteuid() == 0 or in_own_user_namespace():
        return None
    reason = user_namespaces_available()
    return None if reason is None else f"no user namespace for an unprivileged VPC: {reason}"


def security_groups_of(spec: Spec) -> list[sg.SecurityGroup]:
    """The spec's security groups (`fargo.spec.security`) as nftables will enforce them."""
    rules: dict[str, list[sg.IngressRule]] = {name: [] for name in security_group_names(spec)}
    for rule in ingress_rules(spec):
        source: str | ipaddress.IPv4Network = (
            ipaddress.IPv4Network(ANYWHERE) if rule.source == ANYWHERE else rule.source
        )
        rules[rule.group].append(sg.IngressRule("tcp", source, from_port=rule.port))
    groups = [sg.SecurityGroup(name, tuple(ingress)) for name, ingress in rules.items()]
    if REGISTRY_ENDPOINT in spec.network.vpc_endpoints:
        # As the cloud's endpoints group: the tasks' groups only (there: 443).
        tasks = [service_group(name) for name in spec.services]
        groups.append(
            sg.SecurityGroup(
                ENDPOINTS_GROUP,
                tuple(sg.IngressRule("tcp", group, from_port=REGISTRY_PORT) for group in tasks),
            )
        )
    return groups


class VpcNetwork:
    """The `NetworkMode` of a VPC of namespaces."""

    mode = "vpc"
    name = "VPC network (namespaces: subnets, route tables, NAT gateway, security groups)"
    separate_load_balancers = True

    def __init__(
        self, spec: Spec, *, state_dir: Path, published_ports: Mapping[int, int] | None = None
    ) -> None:
        self.spec = spec
        network = spec.network
        self.layout = VpcLayout(
            network.cidr,
            tuple(network.subnets.public),
            tuple(network.subnets.private),
            nat_gateways=min(network.nat_gateways, len(network.subnets.public)),
        )
        self.vpc = Vpc(self.layout, security_groups_of(spec))
        self.published_ports = dict(published_ports or {})
        self.etc_dir = state_dir / "enis"
        self.registry_host = str(self.layout.internet_cidr.network_address + REGISTRY_OFFSET)
        self._lb_plan = self._plan_load_balancers()
        self._lb_enis: dict[str, VpcInterface] = {}
        # The ecr.dkr endpoint's ENI in each private subnet (index = zone), if in the spec.
        self._endpoint_plan = (
            [(subnet, last_usable(subnet)) for subnet in self.layout.private_subnets]
            if REGISTRY_ENDPOINT in network.vpc_endpoints
            else []
        )
        self._endpoint_enis: list[VpcInterface] = []
        self._tasks: dict[str, tuple[VpcInterface, str]] = {}  # ip -> (ENI, service)
        self._next_zone = 0

    # -- lifecycle ------------------------------------------------------------------------

    def validate(self) -> list[str]:
        problems = []
        unavailable = vpc_mode_unavailable()
        if unavailable is not None:
            problems.append(f"VPC mode is not available: {unavailable}; use --network loopback")
        try:
            self.layout.validate()
        except Ec2Error as err:
            problems.append(str(err))
        return problems

    async def start(self) -> None:
        await asyncio.to_thread(self._build)

    def _build(self) -> None:
        self.vpc.start()
        self.vpc.internet.add_address(ipaddress.IPv4Address(self.registry_host))
        for name, (subnet, ip) in self._lb_plan.items():
            self._lb_enis[name] = self.vpc.attach_network_interface(
                subnet, ip, name=f"elb-{name}", security_groups=[load_balancer_group(name)]
            )
        for zone, (subnet, ip) in enumerate(self._endpoint_plan):
            self._endpoint_enis.append(
                self.vpc.attach_network_interface(
                    subnet, ip, name=f"vpce-ecr-dkr-{zone}", security_groups=[ENDPOINTS_GROUP]
                )
            )

    def reconfigure(self, spec: Spec) -> None:
        """A new spec of the same network (`fargo up` on a running twin): its security
        groups replace the running ones in one nftables transaction; the members of groups
        that remain stay (a new service's group is empty until its tasks attach)."""
        groups = security_groups_of(spec)
        if groups != list(self.vpc.security_groups.groups):
            self.vpc.security_groups.apply(groups)
        self.spec = spec

    async def stop(self) -> None:
        await asyncio.to_thread(self.vpc.close)
        self._lb_enis.clear()
        self._endpoint_enis.clear()
        self._tasks.clear()
        shutil.rmtree(self.etc_dir, ignore_errors=True)

    # -- addresses ------------------------------------------------------------------------

    def _plan_load_balancers(
        self,
    ) -> dict[str, tuple[ipaddress.IPv4Network, ipaddress.IPv4Address]]:
        """Each load balancer's ENI: the first free addresses of the first public (or, for
        internal ones, private) subnet, after the four AWS reserves."""
        plan = {}
        taken: dict[IPv4Network, int] = {}
        for name, lb in self.spec.load_balancers.items():
            subnets = self.layout.public_subnets if lb.scheme == "internet-facing" else None
            subnet = (subnets or self.layout.private_subnets or self.layout.public_subnets)[0]
            taken[subnet] = taken.get(subnet, 0) + 1
            plan[name] = (subnet, subnet.network_address + 3 + taken[subnet])
        return plan

    def load_balancer_address(self, name: str, scheme: str) -> str:
        """Internal: its ENI's address. Internet-facing: the host's loopback, where its
        listeners are published (the n-th one on 127.0.0.n)."""
        if scheme == "internet-facing":
            facing = [n for n, lb in self.spec.load_balancers.items() if lb.scheme == scheme]
            return f"127.0.0.{facing.index(name) + 1}"
        return str(self._lb_plan[name][1])

    def load_balancer_dns_address(self, name: str) -> str:
        """Its ENI's address: tasks reach even an internet-facing one inside the VPC."""
        return str(self._lb_plan[name][1])

    def listener_port(self, load_balancer: str, port: int) -> int:
        lb = self.spec.load_balancers[load_balancer]
        if lb.scheme != "internet-facing":
            return port  # inside the VPC, the load balancer has its own ports
        if port in self.published_ports:
            return self.published_ports[port]
        return port + PRIVILEGED_PORT_OFFSET if port < 1024 and os.geteuid() != 0 else port

    def container_port(self, port: int) -> int:
        return port

    @property
    def dns_address(self) -> tuple[str, int]:
        return str(self.vpc.dns_address), DNS_PORT

    @property
    def metadata_address(self) -> tuple[str, int]:
        return str(self.vpc.metadata_address), METADATA_PORT

    @property
    def xray_daemon_address(self) -> tuple[str, int]:
        """The metadata address on the router (which tasks reach), the daemon's UDP 2000."""
        return str(self.vpc.metadata_address), XRAY_DAEMON_PORT

    @property
    def registry_address(self) -> tuple[str, int]:
        return self.registry_host, REGISTRY_PORT

    @property
    def registry_endpoint_addresses(self) -> tuple[tuple[str, int], ...]:
        return tuple((str(ip), REGISTRY_PORT) for _, ip in self._endpoint_plan)

    def registry_address_for(self, eni: NetworkInterface) -> tuple[str, int]:
        """Its zone's ``ecr.dkr`` endpoint (private DNS answers with the endpoint's address
        in the task's own zone), else the registry on the internet side."""
        if not self._endpoint_plan:
            return self.registry_address
        _, ip = self._endpoint_plan[eni.zone % len(self._endpoint_plan)]
        return str(ip), REGISTRY_PORT

    def server_socket(self, kind: socket.SocketKind, host: str, port: int) -> socket.socket:
        """Bound where ``host`` is: the router (DNS, metadata), the internet side (ECR), a
        load balancer's ENI, or the host."""
        namespace = self._namespace_of(host)
        if namespace is None:
            return bind_socket(kind, host, port)
        return listen_on(namespace.socket(socket.AF_INET, kind), host, port)

    def _namespace_of(self, host: str) -> NetworkNamespace | None:
        if host in (str(self.vpc.dns_address), str(self.vpc.metadata_address)):
            return self.vpc.router
        if host == self.registry_host:
            return self.vpc.internet.namespace
        for eni in [*self._lb_enis.values(), *self._endpoint_enis]:
            if str(eni.ip) == host:
                return eni.namespace
        return None

    def load_balancer_host(self, name: str) -> LoadBalancerHost:
        """Caddy runs in the load balancer's ENI; internal listeners are bound there too."""
        internal = self.spec.load_balancers[name].scheme != "internet-facing"

        def in_eni(kind: socket.SocketKind, host: str, port: int) -> socket.socket:
            return listen_on(self._lb_enis[name].socket(socket.AF_INET, kind), host, port)

        return LoadBalancerHost(
            command_prefix=lambda: self._lb_command_prefix(name),
            open_listener=in_eni if internal else bind_socket,
            open_local=in_eni,
            inside=None if internal else (self.load_balancer_dns_address(name), in_eni),
            binds_new_listeners=internal,
        )

    def _lb_command_prefix(self, name: str) -> list[str]:
        eni = self._lb_enis.get(name)
        if eni is None:
            raise NetworkInterfaceAttachmentError(f"load balancer {name} has no ENI yet")
        return eni.command_prefix()

    # -- ENIs -----------------------------------------------------------------------------

    async def attach_network_interface(self, service: str, description: str) -> NetworkInterface:
        private = self.layout.private_subnets or self.layout.public_subnets
        zone = self._next_zone % len(private)
        self._next_zone += 1
        subnet = private[zone]
        folder = self.etc_dir / f"{service}-{os.urandom(4).hex()}"
        zones = [self.spec.discovery.namespace] if self.spec.discovery else []
        try:
            eni = await asyncio.to_thread(
                self.vpc.attach_network_interface,
                subnet,
                name=description,
                security_groups=[service_group(service)],
                etc_dir=folder,
                search=zones,
            )
        except Ec2Error as err:
            raise NetworkInterfaceAttachmentError(str(err)) from err
        self._tasks[str(eni.ip)] = (eni, service)
        return NetworkInterface(eni.id, subnet, zone, str(eni.ip), str(eni.ip))

    async def detach_network_interface(self, eni: NetworkInterface) -> None:
        attached, _ = self._tasks.pop(eni.ip, (None, ""))
        if attached is None:
            return
        await asyncio.to_thread(attached.detach)
        if attached.files is not None:
            shutil.rmtree(attached.files.resolv_conf.parent, ignore_errors=True)

    # -- tasks ----------------------------------------------------------------------------

    def task_environment(
        self, eni: NetworkInterface, *, zones: Sequence[str], pythonpath: str
    ) -> dict[str, str]:
        return {"PYTHONPATH": pythonpath}  # names resolve through the task's resolv.conf

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
        """The task in its ENI's namespace and a mount namespace of its own."""
        attached, _ = self._tasks[eni.ip]
        assert attached.files is not None
        wrapped = [
            *attached.command_prefix(),
            find_tool("unshare"),
            "--mount",
            "--propagation",
            "private",
            "--",
            find_tool("sh"),
            "-c",
            MOUNT_ETC,
            "fargo-task",
            str(attached.files.resolv_conf),
            str(attached.files.hosts),
            *argv,
        ]
        return await spawn_task(wrapped, env=env, cwd=cwd, log=log)

    async def open_connection(
        self, host: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        sock = self._socket_from("task", host)
        await connect(sock, host, port)
        return await asyncio.open_connection(sock=sock)

    def socket_factory(self, origin: Origin) -> SocketFactory | None:
        def make(info: tuple[int, int, int, str, tuple[str, int]]) -> socket.socket:
            family, kind, proto, _, address = info
            return self._socket_from(origin, address[0], family, kind, proto)

        return make

    async def connect_from(self, eni: NetworkInterface, host: str, port: int) -> socket.socket:
        attached, _ = self._tasks[eni.ip]
        sock = attached.socket()
        await connect(sock, host, port)
        return sock

    def _socket_from(
        self,
        origin: Origin,
        destination: str,
        family: int = socket.AF_INET,
        kind: int = socket.SOCK_STREAM,
        proto: int = 0,
    ) -> socket.socket:
        """A socket made where a probe to ``destination`` comes from."""
        attached, service = self._tasks.get(destination, (None, ""))
        namespace = self.vpc.router.namespace if False else self.vpc.router
        if attached is not None and origin == "task":
            namespace = attached.namespace
        elif attached is not None:
            groups = self.spec.services[service].target_groups
            balancers = [b for g in groups for b in forwarding_load_balancers(self.spec, g)]
            if balancers and balancers[0] in self._lb_enis:
                namespace = self._lb_enis[balancers[0]].namespace
        return namespace.socket(family, kind, proto)

    # -- evidence -------------------------------------------------------------------------

    def route_out(self, eni: NetworkInterface) -> list[str]:
        """The hops a connection from ``eni`` to the internet takes, as the route tables say."""
        subnet = ipaddress.IPv4Network(eni.subnet)
        table = next((t for t in self.vpc.route_tables if subnet in t.subnets), None)
        hops = [f"{eni.private_ip} (task ENI {eni.id} in {subnet})"]
        if table is None or (table.nat is None and not table.internet_gateway):
            return [*hops, f"no route to 0.0.0.0/0 in the route table of {subnet}"]
        router = ipaddress.IPv4Network(subnet).network_address + 1
        if table.internet_gateway:
            return [*hops, f"{router} (VPC router, {table.name} route table: 0.0.0.0/0 → igw)"]
        assert table.nat is not None
        nat = next(n for n in self.vpc.nat_gateways if n.private_ip == table.nat.ip)
        return [
            *hops,
            f"{router} (VPC router, {table.name} route table: 0.0.0.0/0 → {nat.id})",
            f"{nat.private_ip} (NAT gateway {nat.id} in {nat.subnet}: masquerade)",
            f"{nat.elastic_ip} (its Elastic IP, at the Internet Gateway)",
            f"{self.registry_host}:{REGISTRY_PORT} (ECR endpoint, internet side)",
        ]

    def registry_route(self, eni: NetworkInterface) -> list[str]:
        """The hops of ``eni``'s image pull: to its zone's ``ecr.dkr`` endpoint inside the
        VPC when the spec has one, else out to the internet (`route_out`)."""
        if not self._endpoint_enis:
            return self.route_out(eni)
        host, port = self.registry_address_for(eni)
        endpoint = next(e for e in self._endpoint_enis if str(e.ip) == host)
        router = ipaddress.IPv4Network(eni.subnet).network_address + 1
        return [
            f"{eni.private_ip} (task ENI {eni.id} in {eni.subnet})",
            f"{router} (VPC router: {self.layout.cidr} → local, no NAT gateway)",
            f"{host}:{port} (VPC endpoint {REGISTRY_ENDPOINT}, {endpoint.id} in "
            f"{endpoint.subnet}: private DNS)",
        ]

    def elastic_ips(self) -> dict[str, str]:
        """NAT gateway id → its Elastic IP."""
        return {n.id: str(n.elastic_ip) for n in self.vpc.nat_gateways}

    async def query_dns(self, eni: NetworkInterface, wire: bytes, timeout: float = 2.0) -> bytes:
        """Send a DNS query from inside ``eni`` to the VPC's DNS server; its answer."""
        attached, _ = self._tasks[eni.ip]
        sock = attached.socket(socket.AF_INET, socket.SOCK_DGRAM)
        loop = asyncio.get_running_loop()
        try:
            sock.setblocking(False)
            await loop.sock_sendto(sock, wire, (str(self.vpc.dns_address), DNS_PORT))
            async with asyncio.timeout(timeout):
                answer, _ = await loop.sock_recvfrom(sock, 65535)
            return answer
        finally:
            sock.close()

    async def probe_from_internet(self, host: str, port: int, timeout: float) -> str:
        """What a connection from the internet side to ``host:port`` meets."""
        sock = self.vpc.internet.namespace.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            async with asyncio.timeout(timeout):
                await connect(sock, host, port)
            return "connected"
        except TimeoutError:
            return f"timed out after {timeout:g} s"
        except OSError as err:
            return f"refused: {err.strerror or err}"
        finally:
            sock.close()
