"""``GET /api/architecture``: the spec's architecture, drawn with the twin's live state.

    architecture(spec, runtime.describe())   # a JSON-ready dict

The VPC and its subnets per Availability Zone, the NAT gateways, the load balancers with
their listeners, rules and target groups, the services with their live tasks and their
health, and the Cloud Map namespace with its instances. Zone names are the twin's
(``us-east-1a``…, a task's zone is its subnet's position in the spec's list).
"""

from __future__ import annotations

from typing import Any

from fargo.local.status import ServiceStatus, TwinStatus
from fargo.spec import Spec
from fargo.spec.elb import Action
from fargo.spec.routing import describe_action, describe_condition

ZONE_LETTERS = "abcdef"


def zone_name(spec: Spec, index: int) -> str:
    """The twin's name of the ``index``-th Availability Zone (``us-east-1a`` …)."""
    return f"{spec.region}{ZONE_LETTERS[index]}"


def architecture(spec: Spec, status: TwinStatus) -> dict[str, Any]:
    """The architecture as the page draws it (see the module's docstring)."""
    network = spec.network
    zones = [zone_name(spec, i) for i in range(network.availability_zones)]
    subnets = []
    for kind, cidrs in (("public", network.subnets.public), ("private", network.subnets.private)):
        for index, cidr in enumerate(cidrs):
            subnets.append(
                {
                    "name": f"{kind}-{ZONE_LETTERS[index]}",
                    "kind": kind,
                    "cidr": str(cidr),
                    "availability_zone": zones[index] if index < len(zones) else None,
                }
            )
    nat_gateways = [
        {
            "name": f"nat-{ZONE_LETTERS[i]}",
            "availability_zone": zones[i],
            "subnet": f"public-{ZONE_LETTERS[i]}",
        }
        for i in range(min(network.nat_gateways, len(zones)))
    ]
    return {
        "name": spec.name,
        "region": spec.region,
        "network_mode": status.network_mode,
        "vpc": {
            "cidr": str(network.cidr),
            "availability_zones": zones,
            "vpc_endpoints": list(network.vpc_endpoints),
        },
        "subnets": subnets,
        "nat_gateways": nat_gateways,
        "load_balancers": _load_balancers(spec, status),
        "services": [_service(spec, s, status) for s in status.services],
        "discovery": _discovery(spec, status),
        "readiness": status.readiness.model_dump(mode="json"),
    }


def _target_groups_of(action: Action) -> list[str]:
    return [w.target_group for w in action.weighted_target_groups()]


def _load_balancers(spec: Spec, status: TwinStatus) -> list[dict[str, Any]]:
    found = []
    for name, lb in spec.load_balancers.items():
        urls = status.endpoints.load_balancers.get(name, [])
        listeners = []
        groups: list[str] = []
        for index, listener in enumerate(lb.listeners):
            rules = [
                {
                    "priority": rule.priority,
                    "conditions": [describe_condition(c) for c in rule.conditions],
                    "action": describe_action(rule.action),
                    "target_groups": _target_groups_of(rule.action),
                }
                for rule in listener.rules_by_priority()
            ]
            default_groups = _target_groups_of(listener.default_action)
            rule_groups = [
                g for rule in listener.rules_by_priority() for g in _target_groups_of(rule.action)
            ]
            for group in rule_groups + default_groups:
                if group not in groups:
                    groups.append(group)
            listeners.append(
                {
                    "port": listener.port,
                    "protocol": listener.protocol,
                    "url": urls[index] if index < len(urls) else None,
                    "rules": rules,
                    "default_action": describe_action(listener.default_action),
                    "default_target_groups": default_groups,
                }
            )
        found.append(
            {
                "name": name,
                "scheme": lb.scheme,
                "dns_name": status.endpoints.load_balancer_dns_names.get(name),
                "subnets": "public" if lb.scheme == "internet-facing" else "private",
                "listeners": listeners,
                "target_groups": [
                    {"name": group, "services": spec.services_in(group)} for group in groups
                ],
            }
        )
    return found


def _service(spec: Spec, service: ServiceStatus, status: TwinStatus) -> dict[str, Any]:
    svc = spec.services.get(service.name)
    groups = list(svc.target_groups) if svc else []
    target_health: dict[str, dict[str, str]] = {}  # task id → target group → state
    for group in groups:
        described = status.load_balancers.target_groups.get(group)
        for target in described.targets if described else []:
            target_health.setdefault(target.id, {})[group] = str(target.state)
    discovery = None
    if svc is not None and svc.discovery and spec.discovery is not None:
        discovery = spec.discovery.fqdn(svc.discovery)
    autoscaling = None
    if svc is not None and svc.autoscaling is not None:
        autoscaling = svc.autoscaling.model_dump(mode="json")
    return {
        "name": service.name,
        "state": str(service.state),
        "desired": service.desired,
        "running": service.running,
        "pending": service.pending,
        "healthy": service.healthy,
        "subnets": "private",
        "target_groups": groups,
        "discovery": discovery,
        "calls": list(svc.calls) if svc else [],
        "autoscaling": autoscaling,
        "last_stop_reason": service.last_stop_reason,
        "tasks": [
            {
                "id": task.id,
                "address": task.address,
                "availability_zone": task.availability_zone,
                "last_status": str(task.last_status),
                "desired_status": str(task.desired_status),
                "health": str(task.health),
                "target_health": target_health.get(task.id, {}),
            }
            for task in service.tasks
        ],
    }


def _discovery(spec: Spec, status: TwinStatus) -> dict[str, Any] | None:
    if spec.discovery is None:
        return None
    owners = {
        spec.discovery.fqdn(svc.discovery): name
        for name, svc in spec.services.items()
        if svc.discovery
    }
    return {
        "namespace": spec.discovery.namespace,
        "services": [
            {
                "name": described.name,
                "ttl": described.ttl,
                "routing_policy": str(described.routing_policy),
                "service": owners.get(described.name),
                "instances": [i.model_dump(mode="json") for i in described.instances],
            }
            for described in status.discovery
        ],
    }
