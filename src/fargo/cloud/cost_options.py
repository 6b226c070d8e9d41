"""What each cost option would save: a changed copy of the footprint, priced again.

A saving is always the difference of two whole bills, so an option that moves traffic
(VPC endpoints instead of the NAT gateway) is priced with everything it changes. An
option that would cost a demonstration point (DESIGN.md §1: the seven points) says which.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from pydantic import BaseModel, ConfigDict, computed_field

from fargo.cloud.cost import Bill, price
from fargo.cloud.cost_footprint import (
    FARGATE_GATEWAY_ENDPOINTS,
    FARGATE_INTERFACE_ENDPOINTS,
    Footprint,
    ServiceFootprint,
)
from fargo.cloud.cost_lines import fargate_lines
from fargo.cloud.prices import RegionPrices, load_price_table
from fargo.spec import defaults, service_connect

# Right-sizing: Fargate's smallest task, enough for one of the reference's ASGI services at
# demonstration load (measure a service under its real load before adopting it).
RIGHT_SIZE_CPU = 256
RIGHT_SIZE_MEMORY = 512
# Fargate Spot: a capacity provider strategy with this many on-demand tasks per service
# (the base) and the shares below of the tasks beyond it on Spot.
SPOT_BASE = 1
SPOT_SHARES = (0.5, 1.0)
# An option that keeps every point but saves less than this a month is not one. (One
# that costs a point is listed whatever it saves: what trading that point would bring.)
SAVING_FLOOR = 0.005
# A load balancer (point 4) or Cloud Map (point 5) shows balancing only across two tasks.
BALANCING_TASKS = 2

# Interface endpoints that take image pulls off the NAT gateway (point 1 shows them on it).
ECR_ENDPOINTS = ("ecr.api", "ecr.dkr")

# The demonstration points an option can cost (DESIGN.md §1).
NAT_GATEWAY_POINT = 1  # a task in a private subnet pulls its image through the NAT gateway
INTERNAL_LOAD_BALANCER_POINT = 2  # service-to-service calls through an internal load balancer

Change = Callable[[Footprint], Footprint]


class Option(BaseModel):
    """A change to the deployment, priced: ``monthly`` with it, ``saving`` against without."""

    model_config = ConfigDict(frozen=True)

    key: str
    title: str
    monthly: float
    saving: float
    loses_point: int | None  # the demonstration point it costs, if any
    note: str

    @computed_field  # type: ignore[prop-decorator]
    @property
    def keeps_every_point(self) -> bool:
        return self.loses_point is None


@dataclass(frozen=True)
class _Candidate:
    key: str
    title: str
    change: Change
    note: str
    loses_point: int | None = None


def options(fp: Footprint, base: Bill) -> list[Option]:
    """Every option that changes ``fp``, priced in ``base``'s region and traffic."""
    prices = load_price_table().region(base.region)
    priced = []
    for candidate in _candidates(prices, base.hours_per_month):
        changed = candidate.change(fp)
        if changed == fp:
            continue  # nothing to change: no line
        total = price(changed, region=base.region, requests_per_month=base.requests_per_month)
        if candidate.loses_point is None and total.total >= base.total - SAVING_FLOOR:
            continue  # keeps the same points for no less: the spec already does better
        priced.append(
            Option(
                key=candidate.key,
                title=candidate.title,
                monthly=total.total,
                saving=base.total - total.total,
                loses_point=candidate.loses_point,
                note=candidate.note,
            )
        )
    return priced


def _candidates(prices: RegionPrices, hours: float) -> list[_Candidate]:
    def every_point(fp: Footprint) -> Footprint:
        return _pulls_through_nat(fp).with_services(
            [_cheapest(_right_sized(_balancing(svc)), prices, hours) for svc in fp.services]
        )

    return [
        _Candidate(
            "arm64",
            "ARM64 (Graviton) for every service",
            _arm64,
            "images built for linux/arm64 (fargo deploy builds for each service's architecture)",
        ),
        *(
            _Candidate(
                f"spot-{share * 100:.0f}",
                f"Fargate Spot for {share * 100:.0f} % of the tasks beyond {SPOT_BASE} a service",
                _spot(share),
                "a Spot task can be stopped with two minutes' notice, and ECS starts another",
            )
            for share in SPOT_SHARES
        ),
        _Candidate(
            "right-size",
            f"{RIGHT_SIZE_CPU / 1024:g} vCPU / {RIGHT_SIZE_MEMORY / 1024:g} GB tasks",
            lambda fp: fp.with_services([_right_sized(svc) for svc in fp.services]),
            "where a task fits: measure the service under load first",
        ),
        _Candidate(
            "vpc-endpoints",
            "VPC endpoints instead of the NAT gateway",
            _vpc_endpoints,
            f"interface endpoints {', '.join(FARGATE_INTERFACE_ENDPOINTS)} in each zone and "
            "the S3 gateway endpoint (no charge); no pull through a NAT gateway to show",
            loses_point=NAT_GATEWAY_POINT,
        ),
        _Candidate(
            "one-load-balancer",
            "one load balancer instead of two or more",
            _one_load_balancer,
            "internal calls would go through the internet-facing load balancer: no internal "
            "load balancer to show",
            loses_point=INTERNAL_LOAD_BALANCER_POINT,
        ),
        _Candidate(
            "no-container-insights",
            "Container Insights off",
            _without_container_insights,
            "no per-task CPU and memory metrics (ECS's per-service CPUUtilization and "
            "MemoryUtilization, which autoscaling tracks, stay: no charge)",
        ),
        _Candidate(
            "every-point",
            "every option that keeps all seven points",
            every_point,
            f"right-sized; per service the cheaper of ARM64 and X86_64 with Spot beyond "
            f"{SPOT_BASE} task; {BALANCING_TASKS} tasks where the spec asks for "
            f"{BALANCING_TASKS} or more (balancing); the load balancers kept, and a NAT gateway "
            "the image pulls go through (no ECR endpoints)",
        ),
        _Candidate(
            "every-point-no-insights",
            "the same, Container Insights off",
            lambda fp: (
                _without_container_insights(every_point(fp)) if fp.container_insights else fp
            ),
            "the cheapest configuration that shows all seven points",
        ),
    ]


def _arm64(fp: Footprint) -> Footprint:
    return fp.with_services([replace(s, architecture="ARM64") for s in fp.services])


def _spot(share: float) -> Change:
    def change(fp: Footprint) -> Footprint:
        return fp.with_services([_on_spot(svc, share) for svc in fp.services])

    return change


def _on_spot(svc: ServiceFootprint, share: float) -> ServiceFootprint:
    return replace(svc, spot_tasks=max(0, svc.tasks - SPOT_BASE) * share)


def _right_sized(svc: ServiceFootprint) -> ServiceFootprint:
    if svc.proxy:
        # The Service Connect proxy's share on top, as AWS advises; the smallest Fargate
        # memory that the larger CPU size offers.
        cpu = RIGHT_SIZE_CPU + service_connect.PROXY_CPU_UNITS
        memory = defaults.FARGATE_MEMORY_BY_CPU[cpu][0]
        return svc.sized(min(svc.cpu, cpu), min(svc.memory, memory))
    return svc.sized(min(svc.cpu, RIGHT_SIZE_CPU), min(svc.memory, RIGHT_SIZE_MEMORY))


def _vpc_endpoints(fp: Footprint) -> Footprint:
    """No NAT gateway; the endpoints tasks start with added to the spec's own."""
    if not fp.nat_gateways:
        return fp  # the spec has its endpoints already (validate makes sure)
    return replace(
        fp,
        nat_gateways=0,
        interface_endpoints=_union(
            fp.interface_endpoints,
            # The X-Ray daemon sends its traces through one too.
            (*FARGATE_INTERFACE_ENDPOINTS, *(("xray",) if fp.tracing else ())),
        ),
        gateway_endpoints=_union(fp.gateway_endpoints, FARGATE_GATEWAY_ENDPOINTS),
    )


def _union(have: tuple[str, ...], need: tuple[str, ...]) -> tuple[str, ...]:
    return (*have, *(name for name in need if name not in have))


def _pulls_through_nat(fp: Footprint) -> Footprint:
    """Point 1: at least one NAT gateway, and no ECR endpoint (private DNS would send the
    pulls there instead)."""
    return replace(
        fp,
        nat_gateways=max(1, fp.nat_gateways),
        interface_endpoints=tuple(n for n in fp.interface_endpoints if n not in ECR_ENDPOINTS),
    )


def _one_load_balancer(fp: Footprint) -> Footprint:
    public = [lb for lb in fp.load_balancers if lb.internet_facing]
    return replace(fp, load_balancers=tuple((public or list(fp.load_balancers))[:1]))


def _without_container_insights(fp: Footprint) -> Footprint:
    return replace(fp, container_insights=False)


def _balancing(svc: ServiceFootprint) -> ServiceFootprint:
    """At least two tasks at rest where the spec asks for two (an autoscaled service idles
    at its minimum, and one task shows no balancing)."""
    if svc.desired_count >= BALANCING_TASKS and svc.tasks < BALANCING_TASKS:
        return replace(svc, tasks=BALANCING_TASKS)
    return svc


def _cheapest(svc: ServiceFootprint, prices: RegionPrices, hours: float) -> ServiceFootprint:
    """The cheapest of the service on either architecture, with Spot beyond the base."""
    candidates = [
        _on_spot(replace(svc, architecture=architecture), 1.0)
        for architecture in ("ARM64", "X86_64")
    ]
    return min(candidates, key=lambda c: sum(x.monthly for x in fargate_lines(c, prices, hours)))
