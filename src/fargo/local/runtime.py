"""The twin's control plane: every part, composed in order and wired together.

Start order (stop is the reverse, and safe after a partial start; see `fargo.local.parts`):
together: the log router, the network and the listener certificate (ACM) → disk report →
Cloud Map namespace → task metadata endpoint → X-Ray daemon (with ``tracing: xray``) →
image registry → access logs → together: the images' push (ECR), the discovery DNS
server and the load balancers (Caddy) → secrets (only a check: each has its local value)
→ console (the demo page's API) → task wiring → ECS cluster → Application Auto Scaling →
metrics → the AWS API endpoint (`fargo.local.aws_api`). Every part validates first
(ports, names, socket paths, environment values, secrets' local values), so a bad
setting fails before anything starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fargo.local import twins
from fargo.local.acm.authority import CertificateAuthority
from fargo.local.acm.listener_certificate import ListenerCertificate
from fargo.local.appautoscaling.scaler import ApplicationAutoScaling
from fargo.local.aws_api.apis import aws_apis
from fargo.local.aws_api.server import AwsApiServer
from fargo.local.caddy.access_logs import AccessLogDelivery, caddy_access_logs
from fargo.local.caddy.data_plane import CaddyDataPlane
from fargo.local.caddy.fleet import CaddyFleet
from fargo.local.caddy.process import CaddyProcess
from fargo.local.cloudmap.registry import CloudMap, NamespaceNotFound, ServiceNotFound
from fargo.local.cloudmap.service_connect import ENDPOINT_TTL_SECONDS, make_endpoint
from fargo.local.cloudwatch.collector import MetricsCollector
from fargo.local.config import TwinConfig
from fargo.local.console.server import Console
from fargo.local.dataplane_dns.discovery import DiscoveryDnsServer
from fargo.local.ec2.loopback import LoopbackNetwork
from fargo.local.ec2.network import NetworkInterface, NetworkMode, network_for
from fargo.local.ecr.distribution import RegistryServer
from fargo.local.ecr.puller import RegistryPuller
from fargo.local.ecr.registry import ImageManifest, LocalRegistry
from fargo.local.ecs.cluster import Cluster, ServiceScheduler
from fargo.local.ecs.deployment import rolling_deployment
from fargo.local.ecs.metadata import TaskMetadataEndpoint, task_metadata
from fargo.local.ecs.secrets import TaskSecrets
from fargo.local.ecs.task import Task
from fargo.local.elb.access_log import AccessLogEntry, AlbNames
from fargo.local.elb.data_plane import LoadBalancerDataPlane
from fargo.local.elb.load_balancing import ElasticLoadBalancing
from fargo.local.elb.names import lb_dns_name
from fargo.local.events import about, dropped_events
from fargo.local.logs.disk_report import DiskReport
from fargo.local.logs.log_router import LogRouter
from fargo.local.parts import Part, PartFailed, Parts, PartsInvalid, Step, Together
from fargo.local.reapply import AppliedSpec, SpecRefused, reapply
from fargo.local.state import folder as state
from fargo.local.status import (
    DiscoveryInstance,
    DiscoveryServiceStatus,
    Endpoints,
    Readiness,
    ServiceConnectStatus,
    TwinStatus,
    readiness_of,
)
from fargo.local.task_hooks import RuntimeTaskHooks
from fargo.local.xray.daemon import XRayDaemon
from fargo.local.xray.load_balancer_entries import from_access_log
from fargo.local.xray.service_graph import Topology, service_map, trace_spans, trace_summary
from fargo.local.xray.store import TraceStore
from fargo.spec import Spec, service_connect
from fargo.spec.defaults import MAX_DESIRED_COUNT

logger = logging.getLogger(__name__)


class StartError(RuntimeError):
    """The twin could not start; everything already started has been stopped."""


class Runtime:
    """One running twin of one spec."""

    def __init__(self, spec: Spec, config: TwinConfig) -> None:
        self.spec = spec
        self.config = config
        self.spec_path = config.spec_path
        self.state_dir = config.state_dir
        self.adopted_caddys: tuple[str, ...] = ()  # whose listeners `adopt` took over
        self.network: NetworkMode = network_for(spec, config)
        self.ca = CertificateAuthority(self.state_dir / "ca", allowed=config.ca_allowed)
        self.cloud_map = CloudMap()
        bind = self.network.server_socket
        self.dns = DiscoveryDnsServer(
            self.cloud_map, self.state_dir, *self.network.dns_address, bind=bind
        )
        self.metadata = TaskMetadataEndpoint(
            self._task_metadata,
            *self.network.metadata_address,
            bind=bind,
            own_address_only=self.network.mode == "vpc",
        )
        self.traces = TraceStore()
        self.xray: XRayDaemon | None = None
        if spec.tracing == "xray":
            self.xray = XRayDaemon(self.traces, *self.network.xray_daemon_address, bind=bind)
        self.registry = LocalRegistry(self.state_dir / "registry", self.spec_path.parent)
        self.registry_endpoint = RegistryServer(
            self.registry.store,
            host=self.network.registry_address[0],
            port=self.network.registry_address[1],
            log_path=self.state_dir / "logs" / "registry-pulls.jsonl",
            bind=bind,
            endpoints=self.network.registry_endpoint_addresses,
        )
        self.puller = RegistryPuller(
            registry_url=self._registry_url,
            images=self.state_dir / "images",
            connect=self.network.connect_from,
        )
        self.lb_addresses = {
            name: self.network.load_balancer_address(name, lb.scheme)
            for name, lb in spec.load_balancers.items()
        }
        self.certificate = self._listener_certificate()
        self.data_plane = self._data_plane()
        self.elb = ElasticLoadBalancing(
            spec,
            data_plane=self.data_plane,
            addresses=self.lb_addresses,
            listener_port=self.network.listener_port,
            clock=config.clock,
            socket_factory=self.network.socket_factory("load-balancer"),
            on_unhealthy=self._target_unhealthy,
        )
        self.secrets = TaskSecrets(spec, self.spec_path.parent)
        self.console = Console(self, port=config.console_port)
        self.hooks = self.task_hooks_for(spec, on_change=self._changed_now)
        self.log_router = LogRouter(self.state_dir, retention_days=spec.logging.retention_days)
        self.disk_report = DiskReport(
            self.state_dir, self.log_router.dropped, events=dropped_events
        )
        self.cluster = Cluster(
            spec,
            logs=self.log_router,
            network=self.network,
            registry=self.registry,
            images=self.puller,
            hooks=self.hooks,
            state_dir=self.state_dir,
            clock=config.clock,
            on_change=self._changed_now,
        )
        self.metrics = MetricsCollector(
            spec=lambda: self.spec, cluster=self.cluster, elb=self.elb, clock=config.clock
        )
        self.autoscaling = ApplicationAutoScaling(
            spec, self.cluster, config.clock, metrics=self.metrics.store, elb=self.elb
        )
        self.access_logs = AccessLogDelivery(
            self.state_dir,
            names=self._alb_names,
            targets=lambda: self.metrics.targets,
            on_entry=self._access_entry,
        )
        self._names: AlbNames | None = None
        # The demo page plots the last minutes (GET /api/metrics on the console).
        self.console.sources["metrics"] = lambda query: self.metrics.describe().model_dump(
            mode="json"
        )
        if self.xray is not None:  # and the traces and the service map, with tracing on
            self.console.sources["traces"] = lambda query: self.list_traces(
                limit=_limit(query.get("limit"))
            )
            self.console.sources["trace"] = lambda query: self.get_trace(query["trace_id"])
            self.console.sources["service-map"] = lambda query: self.get_service_map()
        self.aws_api = AwsApiServer(aws_apis(self))
        # The log router's process, the VPC's namespaces and the listener's certificate
        # need nothing of each other: made at once.
        first: list[Part] = [self.log_router, self.network]
        if self.certificate is not None:
            first.append(self.certificate)
        parts: list[Part] = [
            Together(", ".join(part.name for part in first), first),
            self.disk_report,
            Step("Cloud Map namespace", start=self._create_discovery),
            self.metadata,
            *([self.xray] if self.xray is not None else []),
            self.registry_endpoint,
            self.access_logs,  # stops after the load balancers: their last lines are read
            # The images build (or are taken as `fargo up` built them) while the data-plane
            # processes start (each binds its sockets first): none needs another.
            Together(
                "image push, discovery DNS server and load balancers",
                [Step("image push (ECR)", start=self._push_images), self.dns, self.elb],
            ),
            self.secrets,  # only validates: every secret has its value before anything starts
            self.console,  # before the tasks: the demo page's tasks get its URL
            self.hooks,
            self.cluster,
            self.autoscaling,
            self.metrics,
            self.aws_api,
        ]
        self.parts = Parts(parts)
        self.running = False
        self.started_at = time.monotonic()
        self.created_at = datetime.now(UTC)  # CreatedTime, CreateDate... in the AWS API
        self.ready_after: float | None = None
        self._changed = asyncio.Event()
        self._image_locks: dict[str, asyncio.Lock] = {}
        self._applying = asyncio.Lock()

    @property
    def time_scale(self) -> float:
        return self.config.time_scale

    # -- names ------------------------------------------------------------------------

    def lb_dns_name(self, name: str) -> str:
        """The load balancer's DNS name in the twin's ``elb.fargo.internal`` zone."""
        return lb_dns_name(self.spec, name)

    # -- lifecycle --------------------------------------------------------------------

    def validate(self) -> None:
        """Every part's checks, and clashes with other twins on this machine; raises
        `StartError` listing every problem."""
        problems = twins.clashes(self.config, self.spec)
        for endpoint, what in self._host_ports().items():
            holder = twins.holder_of(endpoint)
            if holder is not None and holder.state_dir != str(self.state_dir):
                problems.append(
                    f"{endpoint} ({what}) is served by {holder.describe()}; publish this "
                    "twin's listener elsewhere (--publish LISTENER:PORT) or stop that twin"
                )
        try:
            self.parts.validate()
        except PartsInvalid as err:
            problems += err.problems
        if problems:
            raise StartError("\n".join(["cannot start the twin:", *problems]))

    def _host_ports(self) -> dict[str, str]:
        """``address:port`` this twin serves on the host (host-facing listeners) → what."""
        ports = {}
        for name, lb in self.spec.load_balancers.items():
            address = self.lb_addresses[name]
            if ipaddress.ip_address(address).is_loopback:
                for listener in lb.listeners:
                    port = self.network.listener_port(name, listener.port)
                    ports[f"{address}:{port}"] = f"load balancer {name!r} listener {listener.port}"
        return ports

    async def start(self) -> None:
        """Start every part; on failure stop what started and raise `StartError`."""
        state.prepare(self.state_dir)
        self.validate()
        try:
            await self.parts.start()
        except PartsInvalid as err:
            raise StartError("\n".join(["cannot start the twin:", *err.problems])) from None
        except PartFailed as err:
            raise StartError(str(err)) from err
        twins.register(self.config, self.spec, list(self._host_ports()))
        self.running = True

    async def stop(self) -> None:
        """Stop everything that runs, each part even if stopping another failed; idempotent."""
        self.running = False
        # The load balancers stop after the tasks (they drain them), maybe long after: a
        # Caddy that exits meanwhile (`fargo down`'s sweep of a stuck stop) stays down.
        self.data_plane.stop_restarting()
        self.dns.stop_restarting()
        try:
            await self.parts.stop()
        finally:
            twins.unregister(self.config)

    def adopt(self, listening: set[str], caddy_folders: Mapping[str, Path]) -> bool:
        """Start beside the data plane a killed control plane left. Loopback mode: its
        listeners and DNS processes adopted, its tasks' ``listening`` addresses given to no
        new task. VPC mode (a new VPC beside the old one): the listeners its
        internet-facing load balancers' Caddys serve on this machine, from those Caddys'
        folders (``caddy_folders``: Caddy name → folder), the new Caddys standing by on them.
        False (nothing adopted) if it cannot be."""
        if isinstance(self.data_plane, CaddyFleet):
            members = self.data_plane.members
            caddys = {  # load balancer → its Caddy's name
                name: members[name].caddy.name
                for name, lb in self.spec.load_balancers.items()
                if lb.scheme == "internet-facing"
            }
            if not caddys or not set(caddys.values()) <= caddy_folders.keys():
                return False
            folders = {name: caddy_folders[caddy] for name, caddy in caddys.items()}
            if not self.data_plane.adopt_listeners(folders):
                return False
            self.adopted_caddys = tuple(caddys.values())
            return True
        if not isinstance(self.data_plane, CaddyDataPlane) or not isinstance(
            self.network, LoopbackNetwork
        ):
            return False
        if not self.data_plane.adopt():
            return False
        if not self.dns.adopt():  # another discovery address (another spec)
            self.data_plane.disown()
            return False
        self.network.reserve(listening)
        self.adopted_caddys = (self.data_plane.caddy.name,)
        return True

    async def take_over_adopted(self) -> None:
        """Serve in place of what `adopt` adopted: loopback mode, this twin's targets and
        records published to the adopted DNS processes; VPC mode, new connections to the
        adopted listeners steered to this twin's Caddys."""
        if isinstance(self.data_plane, CaddyFleet):
            await self.data_plane.take_traffic()
            return
        if isinstance(self.data_plane, CaddyDataPlane):
            self.data_plane.release()
        self.dns.release()

    def adopted_linger_seconds(self) -> float:
        """How long the tasks of a run taken over keep running once this twin serves in
        its place: loopback mode, the longest discovery TTL of the spec (a client may have
        cached their addresses); VPC mode, none (they were in the old VPC, whose only
        clients stop with it)."""
        if isinstance(self.data_plane, CaddyFleet):
            return 0.0
        ttls = [s.ttl for s in self.spec.discovery.services] if self.spec.discovery else []
        return float(max([*ttls, ENDPOINT_TTL_SECONDS]))

    def _data_plane(self) -> LoadBalancerDataPlane:
        """One Caddy for every load balancer, or (VPC mode) one in each load balancer's ENI."""
        certificate = self.certificate.paths if self.certificate else None
        if not self.network.separate_load_balancers:
            return CaddyDataPlane(
                self.spec,
                state_dir=self.state_dir,
                bind=self.lb_addresses,
                listener_port=self.network.listener_port,
                certificate=certificate,
                access_logs=caddy_access_logs(self.state_dir),
            )
        members = {}
        for name in self.spec.load_balancers:
            host = self.network.load_balancer_host(name)
            members[name] = CaddyDataPlane(
                self.spec.only_load_balancer(name),
                state_dir=self.state_dir,
                bind=self.lb_addresses,
                listener_port=self.network.listener_port,
                certificate=certificate,
                caddy=CaddyProcess(
                    self.state_dir, name=f"caddy-{name}", command_prefix=host.command_prefix
                ),
                open_listener=host.open_listener,
                open_local=host.open_local,
                also_listen={name: host.inside} if host.inside else None,
                binds_new_listeners=host.binds_new_listeners,
                access_logs=caddy_access_logs(self.state_dir),
            )
        return CaddyFleet(members)

    def _alb_names(self) -> AlbNames:
        if self._names is None or self._names.spec is not self.spec:
            self._names = AlbNames(self.spec)
        return self._names

    def _changed_now(self) -> None:
        self._changed.set()

    def changed_now(self) -> None:
        """Something changed that readiness waiters should look at again."""
        self._changed.set()

    def _listener_certificate(self) -> ListenerCertificate | None:
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
        return ListenerCertificate(
            self.ca,
            names=[*names, "localhost"],
            ip_addresses=addresses,
            directory=self.state_dir / "certs",
        )

    async def _push_images(self) -> None:
        """Build what is missing or stale (an unchanged image costs a few file reads) and
        push it; what the twin does not honour of a Dockerfile is logged, with its line."""
        for name in self.spec.images:
            await self._push_image(name)

    async def _push_image(self, name: str) -> ImageManifest:
        # Services of one image deploy together (fargo watch): one build, the others wait.
        async with self._image_locks.setdefault(name, asyncio.Lock()):
            return await self._build_and_push(name)

    async def _build_and_push(self, name: str) -> ImageManifest:
        subject = about("image", name)
        logger.info("building image %s", name, extra=subject)
        image = await asyncio.to_thread(self.registry.push, name, self.spec.images[name])
        # An image built now: what the twin does not honour of it (`fargo up` builds before
        # the twin starts and prints them there; `fargo build NAME` shows them again).
        for note in () if image.cached else image.notes:
            logger.warning("image %s: %s", name, note, extra=subject)
        done = "up to date" if image.cached else f"built in {image.build_seconds:.1f} s"
        logger.info("image %s: %s (%s)", name, done, image.tag, extra=subject)
        return image

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
        self._create_service_connect()
        for name in self.spec.load_balancers:
            address = self.network.load_balancer_dns_address(name)
            self.cloud_map.put_record(self.lb_dns_name(name), address, ttl=60)

    def _create_service_connect(self) -> None:
        """Service Connect as DNS (`fargo.local.cloudmap.service_connect`)."""
        namespace = service_connect.namespace(self.spec)
        if namespace is None:
            return
        if self.spec.discovery is None or self.spec.discovery.namespace != namespace:
            self.cloud_map.create_http_namespace(namespace)
        for endpoint in service_connect.endpoints(self.spec).values():
            make_endpoint(self.cloud_map, endpoint)

    # -- readiness ----------------------------------------------------------------------

    def readiness(self) -> Readiness:
        """Whether every service has its desired count of healthy tasks, or what it waits for."""
        if not self.running:
            return Readiness(ready=False, waiting=["the twin to start"])
        return readiness_of([s.describe() for s in self.cluster.services.values()])

    async def wait_ready(self, timeout: float | None = None) -> Readiness:
        """Wait until ready or failing; returns the last `readiness` answer."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            answer = self.readiness()
            if answer.ready and self.ready_after is None:
                self.ready_after = time.monotonic() - self.started_at
            if answer.ready or answer.failure:
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
        scheduler = self._scheduler(name)
        image_name = self.spec.services[name].image
        image = await self._push_image(image_name)
        completed = await rolling_deployment(scheduler, image)
        described = scheduler.describe().model_dump(mode="json")
        return {"service": name, "image": image.uri, "completed": completed, **described}

    def task_hooks_for(self, spec: Spec, *, on_change: Callable[[], None]) -> RuntimeTaskHooks:
        """What a task's life does to this twin's load balancers, Cloud Map and metadata
        endpoint, for the tasks of ``spec``."""
        return RuntimeTaskHooks(
            spec,
            elb=self.elb,
            cloud_map=self.cloud_map,
            metadata=self.metadata,
            network=self.network,
            secrets=self.secrets,
            on_change=on_change,
            console_url=lambda: self.console.url,
            xray=self.xray,
        )

    def scale_service(self, name: str, count: int) -> dict[str, Any]:
        """``ecs update-service --desired-count``: the scheduler starts or drains tasks to
        ``count``; the answer is the service as it is now (the change follows)."""
        scheduler = self._scheduler(name)
        if not 0 <= count <= MAX_DESIRED_COUNT:
            raise ValueError(f"a desired count is 0 to {MAX_DESIRED_COUNT}; found {count}")
        before, scheduler.desired_count = scheduler.desired_count, count
        if before != count:
            scheduler.event(f"desired count changed from {before} to {count}")
        scheduler.wake()
        return scheduler.describe().model_dump(mode="json")

    async def restart_service(self, name: str) -> dict[str, Any]:
        """``ecs update-service --force-new-deployment`` on the image the service runs: every
        task replaced by a rolling deployment, within its minimum and maximum percent."""
        scheduler = self._scheduler(name)
        image = scheduler.image or self.registry.pull(self.spec.services[name].image)
        completed = await rolling_deployment(scheduler, image)
        described = scheduler.describe().model_dump(mode="json")
        return {"service": name, "image": image.uri, "completed": completed, **described}

    async def apply(self, new_spec: Spec) -> AppliedSpec:
        """Apply a new spec as a diff (`fargo.local.reapply`): what changed is added,
        removed, scaled or rolled out; what did not is left alone. Raises `SpecRefused`
        (nothing changed) when the running twin cannot take it. One apply at a time."""
        if not self.running:
            raise SpecRefused(["the twin is still starting; run `fargo up` again once it is ready"])
        async with self._applying:
            applied = await reapply(self, new_spec)
            for line in applied.applied:  # `fargo events` keeps what was changed, and when
                logger.info("new spec: %s", line, extra=about("twin", "spec"))
            # Other twins check their listeners against this twin's, new ones included.
            twins.register(self.config, self.spec, list(self._host_ports()))
            return applied

    def _scheduler(self, name: str) -> ServiceScheduler:
        if self.cluster is None or name not in self.cluster.services:
            known = ", ".join(self.spec.services)
            raise LookupError(f"no service named {name!r} (the spec has {known})")
        return self.cluster.services[name]

    # -- traces (X-Ray) -------------------------------------------------------------------

    def list_traces(
        self, *, service: str | None = None, slow_ms: float = 0.0, limit: int = 20
    ) -> dict[str, Any]:
        """``GET /traces``: the most recent traces first, those through ``service`` and at
        least ``slow_ms`` long."""
        topology = Topology.of(self.spec)
        found = []
        for trace_id, segments in reversed(self.traces.traces()):
            if service is not None and all(s.name != service for s in segments):
                continue
            spans = trace_spans(segments, topology, self.traces.entries(trace_id))
            summary = trace_summary(trace_id, spans)
            if summary["duration_ms"] < slow_ms:
                continue
            found.append(summary)
            if len(found) >= limit:
                break
        return {"tracing": self.spec.tracing, "kept": len(self.traces), "traces": found}

    def get_trace(self, trace_id: str) -> dict[str, Any]:
        """``GET /traces/{id}``: every span of the trace; raises LookupError."""
        segments = self.traces.trace(trace_id)
        spans = trace_spans(segments, Topology.of(self.spec), self.traces.entries(trace_id))
        return {
            **trace_summary(trace_id, spans),
            "spans": [span.to_json() for span in spans],
        }

    def get_service_map(self) -> dict[str, Any]:
        """``GET /service-map``: nodes and edges over the traces kept."""
        topology = Topology.of(self.spec)
        return service_map(
            trace_spans(segments, topology, self.traces.entries(trace_id))
            for trace_id, segments in self.traces.traces()
        )

    def _access_entry(self, entry: AccessLogEntry) -> None:
        """A load balancer's access-log entry (the delivery thread): into the metrics, and
        with tracing on into its trace, for the load balancer's span."""
        self.metrics.record(entry)
        if self.xray is not None:
            hop = from_access_log(entry)
            if hop is not None:
                self.traces.add_entry(hop)

    # -- wiring -----------------------------------------------------------------------

    def _target_unhealthy(self, target_group: str, target_id: str) -> None:
        if self.cluster is not None:
            self.cluster.target_unhealthy(target_group, target_id)

    def _registry_url(self, eni: NetworkInterface) -> str:
        """Where ``eni``'s task pulls from: the registry, or its zone's VPC endpoint."""
        address = self.network.registry_address_for(eni)
        if address == self.network.registry_address:
            return self.registry_endpoint.url  # its port may have been chosen at bind
        host, port = address
        return f"http://{host}:{port}"

    def _task_metadata(self, task_id: str) -> tuple[str, Task] | None:
        return task_metadata(self.cluster.find_task(task_id) if self.cluster else None)

    # -- status -------------------------------------------------------------------------

    def endpoints(self) -> Endpoints:
        host, port = self.dns.address if self._dns_started() else self.network.dns_address
        return Endpoints(
            load_balancers=self.elb.endpoints(),
            load_balancer_dns_names={n: self.lb_dns_name(n) for n in self.spec.load_balancers},
            discovery_dns_server=f"{host}:{port}",
            discovery_dns_problem=self.dns.problem,
            ca_certificate=self.ca.certificate_path,
            aws_api=self.aws_api.url if self.aws_api.started else None,
            console=self.console.url,
        )

    def _dns_started(self) -> bool:
        try:
            self.dns.address  # noqa: B018 - raises until started
        except RuntimeError:
            return False
        return True

    def describe(self) -> TwinStatus:
        """The whole twin, as ``GET /status`` serves it and ``fargo status`` shows it."""
        return TwinStatus(
            spec=self.spec_path,
            state_dir=self.state_dir,
            network_mode=self.network.mode,
            time_scale=self.time_scale,
            pid=os.getpid(),
            ready_after_seconds=self.ready_after,
            readiness=self.readiness(),
            endpoints=self.endpoints(),
            services=[s.describe() for s in self.cluster.services.values()],
            load_balancers=self.elb.describe(),
            discovery=self._describe_discovery(),
            service_connect=self._describe_service_connect(),
            disk=self.disk_report.describe(),
            metrics=self.metrics.describe(latest_only=True),
        )

    def _describe_service_connect(self) -> list[ServiceConnectStatus]:
        return [
            ServiceConnectStatus(
                endpoint=f"http://{endpoint.dns_name}:{endpoint.port}",
                service=endpoint.service,
                namespace=endpoint.namespace,
                discovery_name=endpoint.discovery_name,
                instances=self._instances(endpoint.namespace, endpoint.discovery_name),
            )
            for endpoint in service_connect.endpoints(self.spec).values()
        ]

    def _instances(self, namespace: str, service: str) -> list[DiscoveryInstance]:
        """Every instance registered in a Cloud Map service, healthy or not; none while the
        twin starts, before the namespace and its services are made."""
        try:
            found = self.cloud_map.discover_instances(namespace, service, health_status="ALL")
        except (NamespaceNotFound, ServiceNotFound):
            return []
        return [
            DiscoveryInstance(id=i.instance_id, ipv4=i.ipv4, port=i.port, health=i.health_status)
            for i in found
        ]

    def _describe_discovery(self) -> list[DiscoveryServiceStatus]:
        discovery = self.spec.discovery
        if discovery is None:
            return []
        return [
            DiscoveryServiceStatus(
                name=discovery.fqdn(service.name),
                ttl=service.ttl,
                routing_policy=service.routing_policy,
                instances=self._instances(discovery.namespace, service.name),
            )
            for service in discovery.services
        ]


def _limit(value: str | None, default: int = 20, most: int = 200) -> int:
    """The console's ``?limit=`` of traces: a number from 1 to ``most``, else ``default``."""
    if value is None or not value.isdigit():
        return default
    return max(1, min(int(value), most))
