"""The load balancers as the twin's status shows them: endpoints and their `fargo.local.status`
models.

endpoints(spec, bind={"public": "127.0.0.1"}, listener_port=mapped)
# {"public": ["https://127.0.0.1:8443", "http://127.0.0.1:8080"]}
describe_load_balancers(spec, bind=..., listener_port=mapped)
# {"public": LoadBalancerStatus(scheme=..., address=..., listeners=[ListenerStatus(...)])}
describe_target_group(group, routable=["127.0.1.7:80"], targets=elb.describe_target_health(...))
# TargetGroupStatus(health_check=..., routable=[...], targets=[RegisteredTarget(...)])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fargo.local.ec2.hostport import host_port
from fargo.local.ec2.network import ListenerPort
from fargo.local.elb.target_health import TargetHealthDescription
from fargo.local.status import (
    ListenerRuleStatus,
    ListenerStatus,
    LoadBalancerStatus,
    RegisteredTarget,
    TargetGroupStatus,
)
from fargo.spec.elb import Listener, TargetGroup
from fargo.spec.model import Spec


def listener_url(listener: Listener, address: str, port: int) -> str:
    """Where a listener is reached on the twin, e.g. ``https://127.0.0.1:8443``."""
    return f"{listener.protocol.lower()}://{host_port(address, port)}"


def endpoints(
    spec: Spec, *, bind: Mapping[str, str], listener_port: ListenerPort
) -> dict[str, list[str]]:
    """Load balancer → URLs of its listeners (their ``local_address``)."""
    described = describe_load_balancers(spec, bind=bind, listener_port=listener_port)
    return {
        name: [listener.local_address for listener in lb.listeners]
        for name, lb in described.items()
    }


def describe_load_balancers(
    spec: Spec, *, bind: Mapping[str, str], listener_port: ListenerPort
) -> dict[str, LoadBalancerStatus]:
    """Load balancer → scheme, address, idle timeout and listeners with their rules."""
    return {
        name: LoadBalancerStatus(
            scheme=lb.scheme,
            address=bind[name],
            idle_timeout=lb.idle_timeout,
            listeners=[
                _describe_listener(listener, bind[name], listener_port(name, listener.port))
                for listener in lb.listeners
            ],
        )
        for name, lb in spec.load_balancers.items()
    }


def describe_target_group(
    group: TargetGroup, *, routable: Sequence[str], targets: Sequence[TargetHealthDescription]
) -> TargetGroupStatus:
    """A target group's settings, the addresses that get requests, and its targets' health."""
    return TargetGroupStatus(
        health_check=group.health_check,
        deregistration_delay=group.deregistration_delay,
        routable=list(routable),
        targets=[
            RegisteredTarget(
                id=d.target.id,
                ip=d.target.ip,
                port=d.target.port,
                state=d.state,
                reason=d.reason,
                description=d.description,
            )
            for d in targets
        ],
    )


def _describe_listener(listener: Listener, address: str, local_port: int) -> ListenerStatus:
    return ListenerStatus(
        port=listener.port,
        protocol=listener.protocol,
        ssl_policy=listener.ssl_policy,
        local_address=listener_url(listener, address, local_port),
        rules=[
            ListenerRuleStatus(
                priority=rule.priority, conditions=rule.conditions, action=rule.action
            )
            for rule in listener.rules_by_priority()
        ],
        default_action=listener.default_action,
    )
