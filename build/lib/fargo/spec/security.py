"""Who may open connections to whom: the spec's security groups, for both worlds.

    for rule in ingress_rules(spec):
        rule.group, rule.port, rule.source   # "service:backend-private", 8090,
                                             # "service:backend-public"

One security group per service and per load balancer. Ingress, as the cloud side
opens it and the twin enforces it:

- a task admits its container port from the load balancers that forward to its target
  groups, and from the services that list it in ``calls``;
- an internal load balancer admits its listener ports from the services that list it in
  ``calls``; an internet-facing one admits them from anywhere (``0.0.0.0/0``).

Egress is open, as a new security group's is on AWS. Nothing else gets in: a connection
no rule admits is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

from fargo.spec.model import Spec

ANYWHERE = "0.0.0.0/0"


def service_group(name: str) -> str:
    return f"service:{name}"


def load_balancer_group(name: str) -> str:
    return f"lb:{name}"


@dataclass(frozen=True)
class IngressRule:
    """``group`` admits TCP ``port`` from ``source`` (another group, or a CIDR)."""

    group: str
    port: int
    source: str
    description: str


def forwarding_load_balancers(spec: Spec, target_group: str) -> list[str]:
    """The load balancers with a listener or rule that forwards to ``target_group``."""
    found = []
    for name, lb in spec.load_balancers.items():
        actions = [
            action
            for listener in lb.listeners
            for action in (listener.default_action, *(r.action for r in listener.rules))
        ]
        groups = {w.target_group for action in actions for w in action.weighted_target_groups()}
        if target_group in groups:
            found.append(name)
    return found


def ingress_rules(spec: Spec) -> list[IngressRule]:
    """Every ingress rule of every group, in a stable order."""
    rules: list[IngressRule] = []
    for name, lb in spec.load_balancers.items():
        for listener in lb.listeners:
            if lb.scheme == "internet-facing":
                rules.append(
                    IngressRule(
                        load_balancer_group(name),
                        listener.port,
                        ANYWHERE,
                        f"clients reach load balancer {name}",
                    )
                )
    for service_name, service in spec.services.items():
        for group in service.target_groups:
            for balancer in forwarding_load_balancers(spec, group):
                rules.append(
                    IngressRule(
                        service_group(service_name),
                        service.port,
                        load_balancer_group(balancer),
                        f"load balancer {balancer} forwards to {service_name}",
                    )
                )
        for callee in service.calls:
            if callee in spec.services:
                rules.append(
                    IngressRule(
                        service_group(callee),
                        spec.services[callee].port,
                        service_group(service_name),
                        f"{service_name} calls {callee}",
                    )
                )
            elif callee in spec.load_balancers and spec.load_balancers[callee].scheme == "internal":
                for listener in spec.load_balancers[callee].listeners:
                    rules.append(
                        IngressRule(
                            load_balancer_group(callee),
                            listener.port,
                            service_group(service_name),
                            f"{service_name} calls load balancer {callee}",
                        )
                    )
    return list(dict.fromkeys(rules))


def security_group_names(spec: Spec) -> list[str]:
    """Every group: one per load balancer, one per service."""
    return [
        *(load_balancer_group(name) for name in spec.load_balancers),
        *(service_group(name) for name in spec.services),
    ]
