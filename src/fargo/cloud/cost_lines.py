"""The lines of a bill, one function per AWS service: Fargate, load balancers, NAT or
endpoints, public IPv4 addresses, Cloud Map and Route 53, CloudWatch, X-Ray.

`fargo.cloud.cost` adds them up; quantities billed by use come from `fargo.cloud.cost_usage`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, computed_field

from fargo.cloud.cost_footprint import Footprint, ServiceFootprint
from fargo.cloud.cost_usage import (
    IMAGE_PULL_GB,
    TASK_STARTS_PER_MONTH,
    Traffic,
    container_insights_metrics,
    image_pull_gb,
    stored_gb,
)
from fargo.cloud.prices import FargateRate, RegionPrices

MIB_PER_GB = 1024  # Fargate bills memory by the GB of 1024 MiB
CPU_UNITS_PER_VCPU = 1024


class BillLine(BaseModel):
    """One thing billed: ``quantity`` ``unit`` at ``unit_price`` USD each, for a month."""

    model_config = ConfigDict(frozen=True)

    service: str  # the AWS service, as on an AWS bill
    item: str
    quantity: float
    unit: str
    unit_price: float
    note: str = ""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def monthly(self) -> float:
        return self.quantity * self.unit_price


def bill_lines(fp: Footprint, prices: RegionPrices, traffic: Traffic) -> list[BillLine]:
    """Every line of a month of ``fp``, grouped by AWS service."""
    return [
        *(line for svc in fp.services for line in fargate_lines(svc, prices, traffic.hours)),
        *_load_balancers(fp, prices, traffic),
        *_egress(fp, prices, traffic),
        *_public_ipv4(fp, prices, traffic.hours),
        *_discovery(fp, prices, traffic),
        *_logs(fp, prices, traffic),
        *_xray(fp, prices, traffic),
    ]


def _xray(fp: Footprint, prices: RegionPrices, traffic: Traffic) -> list[BillLine]:
    if not fp.tracing:
        return []
    traces = traffic.xray_traces()
    free = prices.xray.free_traces_per_month
    return [
        BillLine(
            service="X-Ray",
            item="traces recorded",
            quantity=max(traces - free, 0.0) / 1e6,
            unit="million traces",
            unit_price=prices.xray.million_traces_recorded,
            note=f"{traces:,.0f} sampled (1 a second, then 5 %), the first {free:,} a month "
            "free; the daemon sidecar runs in each task's CPU and memory: no charge",
        )
    ]


def fargate_lines(svc: ServiceFootprint, prices: RegionPrices, hours: float) -> list[BillLine]:
    """vCPU-hours and GB-hours of one service, by capacity type (on-demand, Spot)."""
    count = f"{svc.tasks} task{'s' if svc.tasks != 1 else ''}"
    note = (
        f"autoscaled {svc.tasks}–{svc.max_tasks}: priced at min_capacity ({count})"
        if svc.autoscaled
        else count
    )
    capacities: list[tuple[str, float, FargateRate | None]] = [
        ("on-demand", svc.on_demand_tasks, prices.fargate.on_demand.get(svc.architecture)),
        ("Spot", svc.spot_tasks, prices.fargate.spot.get(svc.architecture)),
    ]
    lines = []
    for capacity, tasks, rate in capacities:
        if not tasks:
            continue
        share = note if tasks == svc.tasks else f"{tasks:g} of {count}; {note}"
        if rate is None:
            raise ValueError(f"{svc.name}: Fargate {capacity} has no {svc.architecture} price")
        label = f"{svc.name}: {svc.architecture} {capacity}"
        lines += [
            BillLine(
                service="Fargate",
                item=f"{label}, {svc.cpu / CPU_UNITS_PER_VCPU:g} vCPU",
                quantity=tasks * svc.cpu / CPU_UNITS_PER_VCPU * hours,
                unit="vCPU-hours",
                unit_price=rate.vcpu_hour,
                note=share,
            ),
            BillLine(
                service="Fargate",
                item=f"{label}, {svc.memory / MIB_PER_GB:g} GB",
                quantity=tasks * svc.memory / MIB_PER_GB * hours,
                unit="GB-hours",
                unit_price=rate.gb_hour,
                note=share,
            ),
        ]
    return lines


def _load_balancers(fp: Footprint, prices: RegionPrices, traffic: Traffic) -> list[BillLine]:
    lines = []
    for lb in fp.load_balancers:
        scheme = "internet-facing" if lb.internet_facing else "internal"
        lines += [
            BillLine(
                service="Elastic Load Balancing",
                item=f"{lb.name}: load balancer hours",
                quantity=traffic.hours,
                unit="hours",
                unit_price=prices.load_balancer.hour,
                note=scheme,
            ),
            BillLine(
                service="Elastic Load Balancing",
                item=f"{lb.name}: load balancer capacity units",
                quantity=traffic.lcus(lb.rules) * traffic.hours,
                unit="LCU-hours",
                unit_price=prices.load_balancer.lcu_hour,
                note=f"{traffic.requests:,} requests a month",
            ),
        ]
        if lb.waf_rule_groups:
            lines += _waf(lb.name, lb.waf_rule_groups, prices, traffic)
    return lines


def _waf(name: str, groups: int, prices: RegionPrices, traffic: Traffic) -> list[BillLine]:
    waf = prices.waf
    return [
        BillLine(
            service="AWS WAF",
            item=f"{name}: web ACL",
            quantity=1,
            unit="web ACL-months",
            unit_price=waf.web_acl_month,
        ),
        BillLine(
            service="AWS WAF",
            item=f"{name}: managed rule groups",
            quantity=groups,
            unit="rule-months",
            unit_price=waf.rule_month,
        ),
        BillLine(
            service="AWS WAF",
            item=f"{name}: requests inspected",
            quantity=traffic.requests / 1_000_000,
            unit="million requests",
            unit_price=waf.million_requests,
            note="its request log is billed as vended CloudWatch Logs",
        ),
    ]


def _egress(fp: Footprint, prices: RegionPrices, traffic: Traffic) -> list[BillLine]:
    """How private tasks reach ECR, S3 and CloudWatch Logs: each through its VPC endpoint
    when the spec has one (private DNS sends the traffic there even with a NAT gateway),
    else through the NAT gateways."""
    pulls = image_pull_gb(fp.tasks)
    logs = traffic.application_log_gb(fp.tasks)
    pull_note = (
        f"{fp.tasks} tasks × {TASK_STARTS_PER_MONTH} starts × {IMAGE_PULL_GB:g} GB image pulls"
    )
    layers_by_gateway = "s3" in fp.gateway_endpoints
    logs_by_endpoint = "logs" in fp.interface_endpoints
    lines = []
    if fp.nat_gateways:
        nat = prices.nat_gateway
        through_nat = [
            *([] if layers_by_gateway else [(pulls, pull_note)]),
            *([] if logs_by_endpoint else [(logs, f"{logs:.2f} GB logs")]),
        ]
        lines.append(
            BillLine(
                service="NAT Gateway",
                item="NAT gateway hours",
                quantity=fp.nat_gateways * traffic.hours,
                unit="hours",
                unit_price=nat.hour,
                note=f"{fp.nat_gateways} NAT gateway{'s' if fp.nat_gateways != 1 else ''}",
            )
        )
        if through_nat:
            lines.append(
                BillLine(
                    service="NAT Gateway",
                    item="data processed",
                    quantity=sum(gb for gb, _ in through_nat),
                    unit="GB",
                    unit_price=nat.gb_processed,
                    note=", ".join(note for _, note in through_nat),
                )
            )
    endpoint = prices.interface_endpoint
    for name in fp.interface_endpoints:
        lines.append(
            BillLine(
                service="VPC endpoints",
                item=f"interface endpoint {name}: hours in each zone",
                quantity=fp.availability_zones * traffic.hours,
                unit="hours",
                unit_price=endpoint.hour_per_zone,
                note=f"{fp.availability_zones} zones",
            )
        )
    if logs_by_endpoint:
        lines.append(
            BillLine(
                service="VPC endpoints",
                item="interface endpoint logs: data processed",
                quantity=logs,
                unit="GB",
                unit_price=endpoint.gb_processed,
                note="application logs (image manifests through ecr.dkr: a few KB, left out)",
            )
        )
    if layers_by_gateway:
        lines.append(
            BillLine(
                service="VPC endpoints",
                item="gateway endpoint s3 (image layers)",
                quantity=pulls,
                unit="GB",
                unit_price=0.0,
                note=f"{pull_note}: no charge",
            )
        )
    return lines


def _public_ipv4(fp: Footprint, prices: RegionPrices, hours: float) -> list[BillLine]:
    rate = prices.public_ipv4.hour
    lines = []
    if fp.nat_gateways:
        lines.append(
            BillLine(
                service="Public IPv4",
                item="NAT gateways' Elastic IPs",
                quantity=fp.nat_gateways * hours,
                unit="address-hours",
                unit_price=rate,
                note=f"{fp.nat_gateways} address{'es' if fp.nat_gateways != 1 else ''}",
            )
        )
    for lb in fp.load_balancers:
        if lb.internet_facing:
            lines.append(
                BillLine(
                    service="Public IPv4",
                    item=f"{lb.name}: an address in each zone",
                    quantity=fp.availability_zones * hours,
                    unit="address-hours",
                    unit_price=rate,
                    note=f"{fp.availability_zones} addresses",
                )
            )
    return lines


def _discovery(fp: Footprint, prices: RegionPrices, traffic: Traffic) -> list[BillLine]:
    lines = []
    # A task registers once for DNS discovery and once for a Service Connect endpoint.
    instances = sum(s.tasks * (s.discovery + s.service_connect) for s in fp.services)
    if fp.discovery_namespace or fp.service_connect_http_namespace:
        lines.append(
            BillLine(
                service="Cloud Map",
                item="registered instances",
                quantity=instances,
                unit="instance-months",
                unit_price=prices.cloud_map.instance_month,
                note="a task each, per discovery name and Service Connect endpoint",
            )
        )
    proxies = [s for s in fp.services if s.proxy]
    if proxies:
        lines.append(
            BillLine(
                service="ECS Service Connect",
                item="proxy in each task of " + ", ".join(s.name for s in proxies),
                quantity=sum(s.tasks for s in proxies),
                unit="tasks",
                unit_price=0.0,
                note="no charge: it runs in the task's CPU and memory (AWS advises 256 CPU "
                "units and 64 MiB for it, priced above if the spec adds them); endpoints "
                "reach it through ECS, not DNS queries",
            )
        )
    if fp.discovery_namespace:
        lines += [
            BillLine(
                service="Route 53",
                item="private hosted zone of the Cloud Map namespace",
                quantity=1,
                unit="zone-months",
                unit_price=prices.route53.hosted_zone_month,
            ),
            BillLine(
                service="Route 53",
                item="discovery DNS queries",
                quantity=traffic.discovery_queries() / 1e6,
                unit="million queries",
                unit_price=prices.route53.million_queries,
                note="at most one a request",
            ),
        ]
    if fp.public_hosted_zones:
        lines.append(
            BillLine(
                service="Route 53",
                item="public hosted zone of the certificate",
                quantity=fp.public_hosted_zones,
                unit="zone-months",
                unit_price=prices.route53.hosted_zone_month,
                note="alias queries to the load balancer: no charge",
            )
        )
    return lines


def _logs(fp: Footprint, prices: RegionPrices, traffic: Traffic) -> list[BillLine]:
    cw = prices.cloudwatch
    days = fp.retention_days
    app = traffic.application_log_gb(fp.tasks)
    lines = [
        BillLine(
            service="CloudWatch Logs",
            item="application logs ingested",
            quantity=app,
            unit="GB",
            unit_price=cw.logs_ingested_gb,
            note="access-log lines and health checks",
        ),
        BillLine(
            service="CloudWatch Logs",
            item="application logs stored",
            quantity=stored_gb(app, days),
            unit="GB-months",
            unit_price=cw.logs_stored_gb_month,
            note=f"{days} days kept",
        ),
    ]
    if fp.flow_logs:
        flows = traffic.flow_log_gb(fp.tasks)
        lines += [
            BillLine(
                service="VPC Flow Logs",
                item="flow log records delivered to CloudWatch Logs",
                quantity=flows,
                unit="GB",
                unit_price=cw.vended_logs_ingested_gb,
            ),
            BillLine(
                service="VPC Flow Logs",
                item="flow logs stored",
                quantity=stored_gb(flows, days),
                unit="GB-months",
                unit_price=cw.logs_stored_gb_month,
                note=f"{days} days kept",
            ),
        ]
    if fp.container_insights:
        metrics = container_insights_metrics(len(fp.services))
        lines += [
            BillLine(
                service="Container Insights",
                item="metrics (cluster, services, task definition families)",
                quantity=metrics,
                unit="metric-months",
                unit_price=cw.metric_month,
                note=f"{len(fp.services)} services",
            ),
            BillLine(
                service="Container Insights",
                item="performance log events",
                quantity=traffic.container_insights_gb(fp.tasks),
                unit="GB",
                unit_price=cw.logs_ingested_gb,
                note="a task event each minute",
            ),
        ]
    return lines
