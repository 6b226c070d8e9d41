"""The original's architecture, priced like a spec: what `fargo cost` compares against.

The facts come from DESIGN.md §1 (the original Terraform project): four services of 512
CPU units / 1024 MiB on X86_64 on-demand, six tasks in all, the public HTTPS load balancer
with one listener rule and the internal one, one NAT gateway over two zones, Container
Insights on, Cloud Map for backend-private, an ACM certificate validated in a Route 53
zone. Flow logs are not among its facts, so they are not counted.
"""

from __future__ import annotations

from fargo.cloud.cost_footprint import Footprint, LoadBalancerFootprint, ServiceFootprint

ORIGINAL_TASKS = {
    "frontend": 1,
    "backend-public": 1,
    "backend-private": 2,
    "backend-private-with-alb": 2,
}
ORIGINAL_TASK_CPU = 512
ORIGINAL_TASK_MEMORY = 1024
ORIGINAL_DISCOVERY_SERVICE = "backend-private"
ORIGINAL_LOAD_BALANCERS = (
    LoadBalancerFootprint("public", internet_facing=True, rules=1),
    LoadBalancerFootprint("internal", internet_facing=False, rules=0),
)
ORIGINAL_AVAILABILITY_ZONES = 2
ORIGINAL_NAT_GATEWAYS = 1
ORIGINAL_CONTAINER_INSIGHTS = True
ORIGINAL_FLOW_LOGS = False
ORIGINAL_PUBLIC_HOSTED_ZONES = 1

ORIGINAL_DESCRIPTION = (
    f"{sum(ORIGINAL_TASKS.values())} X86_64 tasks of {ORIGINAL_TASK_CPU / 1024:g} vCPU / "
    f"{ORIGINAL_TASK_MEMORY / 1024:g} GB on-demand, {len(ORIGINAL_LOAD_BALANCERS)} load "
    f"balancers, {ORIGINAL_NAT_GATEWAYS} NAT gateway"
)


def original_footprint(retention_days: int) -> Footprint:
    """The original's architecture, keeping logs as long as the spec (the same use, alike)."""
    return Footprint(
        services=tuple(
            ServiceFootprint(
                name=name,
                architecture="X86_64",
                cpu=ORIGINAL_TASK_CPU,
                memory=ORIGINAL_TASK_MEMORY,
                tasks=tasks,
                desired_count=tasks,
                discovery=name == ORIGINAL_DISCOVERY_SERVICE,
            )
            for name, tasks in ORIGINAL_TASKS.items()
        ),
        load_balancers=ORIGINAL_LOAD_BALANCERS,
        availability_zones=ORIGINAL_AVAILABILITY_ZONES,
        nat_gateways=ORIGINAL_NAT_GATEWAYS,
        container_insights=ORIGINAL_CONTAINER_INSIGHTS,
        flow_logs=ORIGINAL_FLOW_LOGS,
        discovery_namespace=True,
        public_hosted_zones=ORIGINAL_PUBLIC_HOSTED_ZONES,
        retention_days=retention_days,
    )
