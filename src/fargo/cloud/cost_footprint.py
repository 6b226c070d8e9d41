"""What a spec deploys that AWS bills for: tasks, load balancers, NAT gateways, endpoints, logs.

`footprint` reads it from a spec; the what-if options of `fargo cost`
(`fargo.cloud.cost_options`) change a copy and price it again. The footprint holds
only what changes the bill.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from fargo.cloud.prices import Architecture
from fargo.spec import Spec, egress
from fargo.spec import service_connect as sc
from fargo.spec.model import Service

# The VPC endpoints private Fargate tasks need without a NAT gateway (platform 1.4: image
# manifests, authorization and logs by interface endpoints; image layers from S3 through
# a gateway endpoint, which has no charge).
FARGATE_INTERFACE_ENDPOINTS = tuple(
    name for name in egress.TASK_LAUNCH_ENDPOINTS if egress.endpoint_type(name) == "Interface"
)
FARGATE_GATEWAY_ENDPOINTS = tuple(
    name for name in egress.TASK_LAUNCH_ENDPOINTS if egress.endpoint_type(name) == "Gateway"
)


@dataclass(frozen=True)
class ServiceFootprint:
    """One ECS service at its steady count: ``tasks`` tasks, ``spot_tasks`` of them on Spot.

    ``spot_tasks`` may be a fraction: a weighted capacity provider strategy places that
    share of the tasks beyond its base on Fargate Spot on average.
    """

    name: str
    architecture: Architecture
    cpu: int  # CPU units (1024 = 1 vCPU)
    memory: int  # MiB
    tasks: int
    spot_tasks: float = 0.0
    max_tasks: int | None = None  # autoscaled: the steady count is the minimum
    desired_count: int = 1
    discovery: bool = False  # its tasks register in Cloud Map (DNS discovery)
    service_connect: bool = False  # its tasks register in Cloud Map (a Service Connect endpoint)
    proxy: bool = False  # its tasks run the Service Connect proxy (in their CPU and memory)

    @property
    def on_demand_tasks(self) -> float:
        return self.tasks - self.spot_tasks

    @property
    def autoscaled(self) -> bool:
        return self.max_tasks is not None

    def sized(self, cpu: int, memory: int) -> ServiceFootprint:
        return replace(self, cpu=cpu, memory=memory)


@dataclass(frozen=True)
class LoadBalancerFootprint:
    name: str
    internet_facing: bool
    rules: int  # listener rules on its busiest listener (evaluated per request)
    waf_rule_groups: int = 0  # managed rule groups of its web ACL; 0: no AWS WAF


@dataclass(frozen=True)
class Footprint:
    services: tuple[ServiceFootprint, ...]
    load_balancers: tuple[LoadBalancerFootprint, ...]
    availability_zones: int
    nat_gateways: int
    container_insights: bool
    flow_logs: bool
    discovery_namespace: bool
    public_hosted_zones: int  # Route 53 zones the certificates are validated in
    retention_days: int
    interface_endpoints: tuple[str, ...] = ()  # billed per zone-hour and per GB
    gateway_endpoints: tuple[str, ...] = ()  # no charge
    service_connect_http_namespace: bool = False  # a Cloud Map HTTP namespace: no hosted zone
    tracing: bool = False  # X-Ray: traces recorded are billed; the daemon runs in the task

    @property
    def tasks(self) -> int:
        return sum(s.tasks for s in self.services)

    def with_services(self, services: list[ServiceFootprint]) -> Footprint:
        return replace(self, services=tuple(services))


def footprint(spec: Spec) -> Footprint:
    """What ``spec`` runs in a steady month."""
    zones = {
        lb.certificate.hosted_zone
        for lb in spec.load_balancers.values()
        if lb.certificate is not None and lb.certificate.hosted_zone is not None
    }
    return Footprint(
        services=tuple(_service(spec, name) for name in spec.services),
        load_balancers=tuple(
            LoadBalancerFootprint(
                name=name,
                internet_facing=lb.scheme == "internet-facing",
                rules=max((len(listener.rules) for listener in lb.listeners), default=0),
                waf_rule_groups=len(lb.waf.managed_rule_groups) if lb.waf is not None else 0,
            )
            for name, lb in spec.load_balancers.items()
        ),
        availability_zones=spec.network.availability_zones,
        nat_gateways=spec.network.nat_gateways,
        container_insights=spec.cluster.container_insights,
        flow_logs=spec.network.flow_logs,
        discovery_namespace=spec.discovery is not None,
        public_hosted_zones=len(zones),
        retention_days=spec.logging.retention_days,
        interface_endpoints=egress.interface_endpoints(spec.network),
        gateway_endpoints=egress.gateway_endpoints(spec.network),
        service_connect_http_namespace=sc.namespace(spec) is not None
        and (spec.discovery is None or spec.discovery.namespace != sc.namespace(spec)),
        tracing=spec.tracing == "xray",
    )


def _service(spec: Spec, name: str) -> ServiceFootprint:
    service: Service = spec.services[name]
    scaling = service.autoscaling
    # Target tracking scales an idle service in to its minimum: that is its steady count.
    tasks = scaling.min_capacity if scaling is not None else service.desired_count
    beyond_base = max(0, tasks - service.capacity.on_demand_base)
    return ServiceFootprint(
        name=name,
        architecture=service.architecture,
        cpu=service.cpu,
        memory=service.memory,
        tasks=tasks,
        spot_tasks=beyond_base * service.capacity.spot / 100,
        max_tasks=scaling.max_capacity if scaling is not None else None,
        desired_count=service.desired_count,
        discovery=service.discovery is not None,
        service_connect=sc.endpoint_of(spec, name) is not None,
        proxy=name in sc.clients(spec) and sc.namespace(spec) is not None,
    )
