"""What happens around a task's life in the twin: the scheduler's `TaskHooks`, wired to
the load balancers, Cloud Map and the task metadata endpoint.

    hooks = RuntimeTaskHooks(spec, elb=elb, cloud_map=cloud_map, metadata=metadata,
                             network=network, secrets=secrets, on_change=changed)
    cluster = Cluster(spec, hooks=hooks, ...)
    ...
    await hooks.stop()  # before the load balancers stop
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from fargo.local.cloudmap.registry import CloudMap
from fargo.local.ec2.network import NetworkMode
from fargo.local.ecs.metadata import TaskMetadataEndpoint
from fargo.local.ecs.secrets import TaskSecrets
from fargo.local.ecs.task import HealthStatus, Task
from fargo.local.elb.load_balancing import ElasticLoadBalancing, Target, TargetState
from fargo.local.elb.names import lb_dns_name
from fargo.local.xray.daemon import XRayDaemon
from fargo.spec import Spec, refs, service_connect
from fargo.spec.environment import task_environment

logger = logging.getLogger(__name__)

PASSED_ENVIRONMENT = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")
# How long a dead task's ENI waits for the load balancers to stop routing to it.
UNROUTE_TIMEOUT_SECONDS = 2.0
# The console's URL, given to the tasks that serve the demo page (`fargo.local.console`).
CONSOLE_URL_ENV = "FARGO_CONSOLE_URL"
LB_PORT_REFERENCE = re.compile(r"\$\{lb:([A-Za-z0-9_-]+)\.dns_name\}:(\d+)")


@dataclass(frozen=True)
class _Registration:
    target_groups: tuple[str, ...]
    cloud_map_services: tuple[tuple[str, str], ...]


class RuntimeTaskHooks:
    """`fargo.local.ecs.cluster.TaskHooks` for the running twin."""

    name = "task wiring (target groups, Cloud Map, metadata)"

    def __init__(
        self,
        spec: Spec,
        *,
        elb: ElasticLoadBalancing,
        cloud_map: CloudMap,
        metadata: TaskMetadataEndpoint,
        network: NetworkMode,
        secrets: TaskSecrets,
        on_change: Callable[[], None],
        console_url: Callable[[], str | None] = lambda: None,
        xray: XRayDaemon | None = None,
    ) -> None:
        self.spec = spec
        self.console_url = console_url
        self.xray = xray
        self.task_secrets = secrets
        self.elb = elb
        self.cloud_map = cloud_map
        self.metadata = metadata
        self.network = network
        self.on_change = on_change
        self._undrained: set[asyncio.Task[None]] = set()
        # Where each task registered, by task id: a task deregisters from there even after
        # a new spec (`fargo up` on a running twin) moved its service elsewhere or removed it.
        self._registered: dict[str, _Registration] = {}

    def validate(self) -> list[str]:
        """Environment values that name a load balancer port the twin serves elsewhere."""
        problems = []
        for service_name, service in self.spec.services.items():
            for key, value in service.environment.items():
                for lb, port in LB_PORT_REFERENCE.findall(value):
                    served = self.network.listener_port(lb, int(port))
                    if lb in self.spec.load_balancers and served != int(port):
                        problems.append(
                            f"services.{service_name}.environment.{key} calls port {port} of "
                            f"load balancer {lb!r}, which {self.network.mode} mode serves on "
                            f"{served}; give that listener a port of 1024 or above"
                        )
        for endpoint in service_connect.endpoints(self.spec).values():
            if endpoint.port != endpoint.container_port:
                # A DNS answer carries no port: without a proxy, a client reaches the task
                # on the port it calls.
                problems.append(
                    f"services.{endpoint.service}.service_connect.port {endpoint.port} differs "
                    f"from the container port {endpoint.container_port}: the twin runs Service "
                    "Connect as DNS, without a proxy to map one port to the other; use the "
                    "container port"
                )
        return problems

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self.close()

    async def close(self) -> None:
        """Cancel the deregistrations still running in the background."""
        pending, self._undrained = list(self._undrained), set()
        for job in pending:
            job.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def secrets(self, task: Task) -> dict[str, str]:
        """The task's secrets from their local sources; `SecretsUnavailable` says which has
        no value."""
        return self.task_secrets.values(task.service)

    def environment(self, task: Task) -> dict[str, str]:
        """The task's environment: the spec's (references resolved) and what ECS sets; not
        its secrets (`secrets`)."""
        spec = self.spec
        svc = spec.services[task.service]

        def lookup(ref: refs.Reference) -> str:
            if ref.kind == "lb":
                return lb_dns_name(spec, ref.name)
            if ref.kind == "discovery":
                assert spec.discovery is not None
                return spec.discovery.fqdn(ref.name)
            if ref.kind == "service_connect":
                return service_connect.endpoints(spec)[ref.name].dns_name
            return task.ip

        env = {key: os.environ[key] for key in PASSED_ENVIRONMENT if key in os.environ}
        env.update(
            {key: refs.resolve(value, lookup) for key, value in task_environment(svc).items()}
        )
        env.update(
            {
                "PORT": str(task.port),
                "HOST": task.ip,
                "AWS_REGION": spec.region,
                "AWS_DEFAULT_REGION": spec.region,
                "AWS_EXECUTION_ENV": "AWS_ECS_FARGATE",
                "ECS_CONTAINER_METADATA_URI_V4": self.metadata.uri(task.id, task.metadata_token),
                "PYTHONUNBUFFERED": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        )
        console = self.console_url()
        if console is not None and self.serves_the_internet(task.service):
            env[CONSOLE_URL_ENV] = console
        if spec.tracing == "xray" and self.xray is not None:
            # What the cloud sets next to the daemon sidecar: where segments go, and the
            # service's name on the service map.
            env["AWS_XRAY_DAEMON_ADDRESS"] = self.xray.address
            env["AWS_XRAY_TRACING_NAME"] = task.service
        assert task.eni is not None
        env.update(
            self.network.task_environment(task.eni, zones=self.cloud_map.zones(), pythonpath="")
        )
        return env

    def serves_the_internet(self, service: str) -> bool:
        """Whether an internet-facing load balancer forwards to ``service`` (the demo page's
        tasks): those get the console's URL, ``FARGO_CONSOLE_URL``, to give to the page."""
        svc = self.spec.services.get(service)
        if svc is None:
            return False
        for lb in self.spec.load_balancers.values():
            if lb.scheme != "internet-facing":
                continue
            for listener in lb.listeners:
                actions = [listener.default_action, *(r.action for r in listener.rules)]
                for action in actions:
                    groups = {w.target_group for w in action.weighted_target_groups()}
                    if groups & set(svc.target_groups):
                        return True
        return False

    def cloud_map_services(self, service: str) -> list[tuple[str, str]]:
        """``(namespace, Cloud Map service)`` a task of ``service`` registers in: its
        discovery service, and its Service Connect endpoint."""
        svc = self.spec.services[service]
        found = []
        if svc.discovery and self.spec.discovery:
            found.append((self.spec.discovery.namespace, svc.discovery))
        endpoint = service_connect.endpoint_of(self.spec, service)
        if endpoint is not None:
            found.append((endpoint.namespace, endpoint.discovery_name))
        return found

    def _target_groups(self, task: Task) -> list[str]:
        registered = self._registered.get(task.id)
        if registered is not None:
            return list(registered.target_groups)
        svc = self.spec.services.get(task.service)
        return list(svc.target_groups) if svc is not None else []

    def _cloud_map_services(self, task: Task) -> list[tuple[str, str]]:
        registered = self._registered.get(task.id)
        if registered is not None:
            return list(registered.cloud_map_services)
        if task.service not in self.spec.services:
            return []
        return self.cloud_map_services(task.service)

    async def register(self, task: Task) -> None:
        """Register the task with its target groups and its Cloud Map services."""
        svc = self.spec.services[task.service]
        self._registered[task.id] = _Registration(
            tuple(svc.target_groups), tuple(self.cloud_map_services(task.service))
        )
        for group in svc.target_groups:
            self.elb.register_targets(group, [Target(task.id, task.ip, task.port)])
        for namespace, cloud_map_service in self.cloud_map_services(task.service):
            self.cloud_map.register_instance(
                namespace,
                cloud_map_service,
                task.id,
                task.ip,
                task.port,
                {
                    "AVAILABILITY_ZONE": task.availability_zone or "",
                    "ECS_TASK_DEFINITION_FAMILY": task.family,
                },
            )
        self.on_change()

    async def deregister(self, task: Task, *, drain: bool) -> None:
        """Deregister everywhere; with ``drain`` return once the load balancers have drained
        the task, else (it is dead or must go now) let the draining run in the background
        and return once the load balancers route no new request to it."""
        groups = self._target_groups(task)
        for namespace, cloud_map_service in self._cloud_map_services(task):
            with contextlib.suppress(LookupError):
                self.cloud_map.deregister_instance(namespace, cloud_map_service, task.id)
        self._registered.pop(task.id, None)
        jobs = [self.elb.deregister_targets(group, [task.id]) for group in groups]
        if drain:
            await asyncio.gather(*jobs)
            return
        for job in jobs:
            background = asyncio.create_task(job, name=f"deregister {task.id}")
            self._undrained.add(background)
            background.add_done_callback(self._deregistered)
        await asyncio.sleep(0)  # let them mark the targets draining before the task stops
        # Its ENI is detached next: an address with no ENI drops what is sent to it, so
        # a request routed there after that would hang, not fail over.
        if jobs:
            await self.elb.wait_routed(UNROUTE_TIMEOUT_SECONDS)

    def _deregistered(self, job: asyncio.Task[None]) -> None:
        self._undrained.discard(job)
        if not job.cancelled() and job.exception() is not None:
            logger.error("%s failed: %r", job.get_name(), job.exception())

    def health_changed(self, task: Task) -> None:
        """Pass the container health on to Cloud Map (custom health status)."""
        status: Literal["HEALTHY", "UNHEALTHY"] = (
            "HEALTHY" if task.health is HealthStatus.HEALTHY else "UNHEALTHY"
        )
        for namespace, cloud_map_service in self._cloud_map_services(task):
            with contextlib.suppress(LookupError):
                self.cloud_map.update_instance_custom_health_status(
                    namespace, cloud_map_service, task.id, status
                )
        self.on_change()

    def targets_healthy(self, task: Task) -> bool:
        """Whether every target group of the task's service calls it healthy."""
        for group in self._target_groups(task):
            states = {d.target.id: d.state for d in self.elb.describe_target_health(group)}
            if states.get(task.id) is not TargetState.HEALTHY:
                return False
        return True

    def target_failure(self, task: Task) -> str | None:
        """Why a target group calls the task unhealthy (ALB's reason and description), if one
        does: ``(target-group frontend) Target.ResponseCodeMismatch: Health checks failed ...``."""
        for group in self._target_groups(task):
            for described in self.elb.describe_target_health(group):
                if described.target.id == task.id and described.state is TargetState.UNHEALTHY:
                    return f"(target-group {group}) {described.reason}: {described.description}"
        return None
