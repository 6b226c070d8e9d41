"""The load balancers as the twin's status shows them: endpoints and a JSON-able description.

endpoints(spec, bind={"public": "127.0.0.1"}, listener_port=mapped)
# {"public": ["https://127.0.0.1:8443", "http://127.0.0.1:8080"]}
describe_load_balancers(spec, bind=..., listener_port=mapped)
# {"public": {"scheme": ..., "address": ..., "listeners": [{"rules": [...], ...}]}}
describe_target_group(group, routable=["127.0.1.7:80"], targets=elb.describe_target_health(...))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fargo.local.caddy.listeners import listener_url
from fargo.local.elb.target_health import TargetHealthDescription
from fargo.spec.elb import Listener, TargetGroup
from fargo.spec.model import Spec

JSON = dict[str, Any]


def endpoints(
    spec: Spec, *, bind: Mapping[str, str], listener_port: Callable[[int], int]
) -> dict[str, list[str]]:
    """Load balancer → URLs of its listeners (their ``local_address``)."""
    described = describe_load_balancers(spec, bind=bind, listener_port=listener_port)
    return {
        name: [listener["local_address"] for listener in lb["listeners"]]
        for name, lb in described.items()
    }


def describe_load_balancers(
    spec: Spec, *, bind: Mapping[str, str], listener_port: Callable[[int], int]
) -> JSON:
    """Load balancer → scheme, address, idle timeout and listeners with their rules."""
    return {
        name: {
            "scheme": lb.scheme,
            "address": bind[name],
            "idle_timeout": lb.idle_timeout,
            "listeners": [
                _describe_listener(listener, bind[name], listener_port(listener.port))
                for listener in lb.listeners
            ],
        }
        for name, lb in spec.load_balancers.items()
    }


def describe_target_group(
    group: TargetGroup, *, routable: Sequence[str], targets: Sequence[TargetHealthDescription]
) -> JSON:
    """A target group's settings, the addresses that get requests, and its targets' health."""
    return {
        "health_check": group.health_check.model_dump(mode="json"),
        "deregistration_delay": group.deregistration_delay,
        "routable": list(routable),
        "targets": [
            {
                "id": d.target.id,
                "ip": d.target.ip,
                "port": d.target.port,
                "state": d.state.value,
                "reason": d.reason,
                "description": d.description,
            }
            for d in targets
        ],
    }


def _describe_listener(listener: Listener, address: str, local_port: int) -> JSON:
    return {
        "port": listener.port,
        "protocol": listener.protocol,
        "ssl_policy": listener.ssl_policy,
        "local_address": listener_url(listener, address, local_port),
        "rules": [
            {
                "priority": rule.priority,
                "conditions": [
                    c.model_dump(mode="json", exclude_none=True) for c in rule.conditions
                ],
                "action": rule.action.model_dump(mode="json", exclude_none=True),
            }
            for rule in listener.rules_by_priority()
        ],
        "default_action": listener.default_action.model_dump(mode="json", exclude_none=True),
    }
