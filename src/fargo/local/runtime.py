"""The twin's control plane: starts every part, wires tasks to load balancers and discovery.

Start order (stop is the reverse, and safe after a partial start):
certificate authority → Cloud Map + DNS server → task metadata endpoint →
image registry → load balancers (Caddy) → ECS cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fargo.local.acm.authority import CertificateAuthority, IssuedCertificate
from fargo.local.cloudmap.dns_server import DnsServer
from fargo.local.cloudmap.registry import CloudMap
from fargo.local.ec2.network import NetworkMode, network_for
from fargo.local.ecr.registry import LocalRegistry
from fargo.local.ecs.cluster import Cluster
from fargo.local.ecs.deployment import rolling_deployment
from fargo.local.ecs.metadata import TaskMetadataEndpoint
from fargo.local.elb.load_balancing import ElasticLoadBalancing
from fargo.local.state import folder as state
from fargo.local.task_hooks import RuntimeTaskHooks, lb_dns_name
from fargo.spec import Spec
from fargo.spec.defaults import LOCAL_TIME_SCALE


class StartError(RuntimeError):
    """The twin could not start; everything already started has been stopped."""


class PortInUse(StartError):
    pass


class Runtime:
    """One running twin of one spec."""

    def __init__(
        self,
        spec: Spec,
        *,
        spec_path: Path,
        state_dir: Path,
        time_scale: float = LOCAL_TIME_SCALE,
        network_mode: str = "loopback",
        log: Callable[[str], None] = print,
    ) -> None:
        self.spec = spec
        self.spec_path = spec_path.resolve()
        self.state_dir = state_dir.resolve()
        self.time_scale = time_scale
        self.log = log
        self.network: NetworkMode = network_for(spec, network_mode)
        self.ca = CertificateAuthority(self.state_dir / "ca")
        self.cloud_map = CloudMap()
        self.dns = DnsServer(self.cloud_map, *self.network.dns_address)
        self.metadata = TaskMetadataEndpoint(self._task_metadata, self.network.metadata_host)
        self.registry = LocalRegistry(self.state_dir / "registry", self.spec_path.parent)
        self.lb_addresses = {
            name: self.network.load_balancer_address(name, lb.scheme)
            for name, lb in spec.load_balancers.items()
        }
        self.certificate: IssuedCertificate | None = None
        self.elb: ElasticLoadBalancing | None = None
        self.hooks: RuntimeTaskHooks | None = None
        self.cluster: Cluster | None = None
        self.started_at = time.monotonic()
        self.ready_after: float | None = None
        self._changed = asyncio.Event()

    # -- names ------------------------------------------------------------------------

    def lb_dns_name(self, name: str) -> str:
        """The load balancer's DNS name in the twin's ``elb.fargo.internal`` zone."""
        return lb_dns_name(self.spec, name)

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Start every part; on failure stop what started and raise `StartError`."""
        try:
            await self._start()
        except BaseException as err:
            await self.stop()
            if isinstance(err, StartError | asyncio.CancelledError | KeyboardInterrupt):
                raise
            raise StartError(str(err) or type(err).__name__) from err

    async def _start(self) -> None:
        state.prepare(self.state_dir)
        self._check_ports()
        self.certificate = self._issue_certificate()
        self._create_discovery()
        await self.dns.start()
        await self.metadata.start()
        for name, image in self.spec.images.items():
            self.registry.push(name, image)
        cert = None
        if self.certificate is not None:
            cert = (self.certificate.certificate_path, self.certificate.private_key_path)
        self.elb = ElasticLoadBalancing(
            self.spec,
            state_dir=self.state_dir,
            bind=self.lb_addresses,
            listener_port=self.network.listener_port,
            certificate=cert,
            time_scale=self.time_scale,
            on_unhealthy=self._target_unhealthy,
        )
        await self.elb.start()
        self.hooks = RuntimeTaskHooks(
            self.spec,
            elb=self.elb,
            cloud_map=self.cloud_map,
            metadata=self.metadata,
            dns=self.dns,
            on_change=self._changed.set,
            log=self.log,
        )
        self.cluster = Cluster(
            self.spec,
            network=self.network,
            registry=self.registry,
            hooks=self.hooks,
            state_dir=self.state_dir,
            time_scale=self.time_scale,
            on_change=self._changed.set,
            log=self.log,
        )
        self.cluster.start()

    async def stop(self) -> None:
        """Stop everything that runs, each part even if stopping another failed; idempotent."""
        cluster, self.cluster = self.cluster, None
        hooks, self.hooks = self.hooks, None
        elb, self.elb = self.elb, None
        async with contextlib.AsyncExitStack() as parts:  # stops in reverse order
            parts.push_async_callback(self.dns.stop)
            parts.push_async_callback(self.metadata.stop)
            if elb is not None:
                parts.push_async_callback(elb.stop)
            if hooks is not None:
                parts.push_async_callback(hooks.close)
            if cluster is not None:
                parts.push_async_callback(cluster.stop)

    def _check_ports(self) -> None:
        wanted = [(*self.network.dns_address, "the discovery DNS server")]
        for name, lb in self.spec.load_balancers.items():
            for listener in lb.listeners:
                port = self.network.listener_port(listener.port)
                wanted.append(
                    (
                        self.lb_addresses[name],
                        port,
                        f"load balancer {name!r} listener {listener.port}",
                    )
                )
        for host, port, what in wanted:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((host, port))
                except OSError as err:
                    raise PortInUse(
                        f"port {port} on {host} is in use ({what}): {err.strerror}; "
                        "stop what holds it (`ss -ltnp 'sport = :{port}'` shows it) or run "
                        "`fargo down` if an earlier twin is still up".replace("{port}", str(port))
                    ) from None

    def _issue_certificate(self) -> IssuedCertificate | None:
        names: list[str] = []
        addresses: list[str] = []
        for name, lb in self.spec.load_balancers.items():
            if lb.certificate is None:
                continue
            names += [lb.certificate.domain, *lb.certificate.subject_alternative_names]
            names.append(self.lb_dns_name(name))
            addresses.append(self.lb_addresses[name])
        if not names:
            return None
        return self.ca.issue(
            names=[*dict.fromkeys([*names, "localhost"])],
            ip_addresses=[*dict.fromkeys(addresses)],
            directory=self.state_dir / "certs",
        )

    def _create_discovery(self) -> None:
        discovery = self.spec.discovery
        if discovery is not None:
            self.cloud_map.create_private_dns_namespace(discovery.namespace)
            for service in discovery.services:
                self.cloud_map.create_service(
                    discovery.namespace,
                    service.name,
                    ttl=service.ttl,
                    record_types=service.record_types,
                    routing_policy=service.routing_policy,
                )
        for name in self.spec.load_balancers:
            self.cloud_map.put_record(self.lb_dns_name(name), self.lb_addresses[name], ttl=60)

    # -- readiness ----------------------------------------------------------------------

    def readiness(self) -> dict[str, Any]:
        """Whether every service has its desired count of healthy tasks, or why not."""
        if self.cluster is None:
            return {"ready": False, "failure": None, "waiting": ["starting"]}
        waiting = []
        failure = None
        for name, scheduler in self.cluster.services.items():
            described = scheduler.describe()
            if described["failure"]:
                failure = f"service {name!r}: {described['failure']}"
            if described["healthy"] < scheduler.desired_count:
                waiting.append(f"{name} {described['healthy']}/{scheduler.desired_count}")
        return {"ready": not waiting, "failure": failure, "waiting": waiting}

    async def wait_ready(self, timeout: float | None = None) -> dict[str, Any]:
        """Wait until ready or failing; returns the last `readiness` answer."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            answer = self.readiness()
            if answer["ready"] and self.ready_after is None:
                self.ready_after = time.monotonic() - self.started_at
            if answer["ready"] or answer["failure"]:
                return answer
            if deadline is not None and time.monotonic() > deadline:
                return answer
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=0.1)

    async def update_service(self, name: str) -> dict[str, Any]:
        """``ecs update-service --force-new-deployment``: push the image from the current
        sources and roll the service onto it; the answer says whether it completed.

        A deployment of a service that is already deploying waits for that one to finish."""
        if self.cluster is None or name not in self.cluster.services:
            raise LookupError(f"no service named {name!r}")
        scheduler = self.cluster.services[name]
        image_name = self.spec.services[name].image
        image = self.registry.push(image_name, self.spec.images[image_name])
        completed = await rolling_deployment(scheduler, image)
        return {"service": name, "image": image.uri, "completed": completed, **scheduler.describe()}

    # -- wiring -----------------------------------------------------------------------

    def _target_unhealthy(self, target_group: str, target_id: str) -> None:
        if self.cluster is not None:
            self.cluster.target_unhealthy(target_group, target_id)

    def _task_metadata(self, task_id: str) -> dict[str, Any] | None:
        task = self.cluster.find_task(task_id) if self.cluster else None
        return task.metadata() if task else None

    # -- status -------------------------------------------------------------------------

    def endpoints(self) -> dict[str, Any]:
        host, port = self.dns.address if self._dns_started() else self.network.dns_address
        out: dict[str, Any] = {
            "load_balancers": self.elb.endpoints() if self.elb else {},
            "load_balancer_dns_names": {n: self.lb_dns_name(n) for n in self.spec.load_balancers},
            "discovery_dns_server": f"{host}:{port}",
            "ca_certificate": str(self.ca.certificate_path),
        }
        return out

    def _dns_started(self) -> bool:
        try:
            self.dns.address  # noqa: B018 - raises until started
        except RuntimeError:
            return False
        return True

    def describe(self) -> dict[str, Any]:
        discovery = []
        if self.spec.discovery is not None:
            for service in self.spec.discovery.services:
                fqdn = self.spec.discovery.fqdn(service.name)
                instances = self.cloud_map.discover_instances(
                    self.spec.discovery.namespace, service.name, health_status="ALL"
                )
                discovery.append(
                    {
                        "name": fqdn,
                        "ttl": service.ttl,
                        "routing_policy": service.routing_policy,
                        "instances": [
                            {
                                "id": i.instance_id,
                                "ipv4": i.ipv4,
                                "port": i.port,
                                "health": i.health_status,
                            }
                            for i in instances
                        ],
                    }
                )
        return {
            "spec": str(self.spec_path),
            "state_dir": str(self.state_dir),
            "network_mode": self.network.name,
            "time_scale": self.time_scale,
            "pid": os.getpid(),
            "ready_after_seconds": self.ready_after,
            "readiness": self.readiness(),
            "endpoints": self.endpoints(),
            "services": [s.describe() for s in self.cluster.services.values()]
            if self.cluster
            else [],
            "load_balancers": self.elb.describe() if self.elb else {},
            "discovery": discovery,
        }


def dump(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, default=str)
