"""Container environment: the spec's symbolic references as CloudFormation values.

``${lb:NAME.dns_name}`` becomes the load balancer's ``DNSName`` attribute,
``${discovery:NAME}`` the service's name in the namespace (``NAME.<namespace>``),
``${service_connect:NAME}`` the endpoint's client alias (its ``dns_name``: the Service
Connect proxy in the caller's task answers it).
``${task:...}`` never gets here: the spec refuses it (a task address has no deploy-time value).
"""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_elasticloadbalancingv2 as elbv2

from fargo.spec import refs
from fargo.spec import service_connect as sc
from fargo.spec.model import Spec


def resolve_environment(
    spec: Spec,
    values: Mapping[str, str],
    *,
    load_balancers: Mapping[str, elbv2.IApplicationLoadBalancer],
) -> dict[str, str]:
    """``values`` with every reference replaced (by a token where the value is deploy-time)."""

    def lookup(ref: refs.Reference) -> str:
        if ref.kind == "lb":
            return load_balancers[ref.name].load_balancer_dns_name
        if ref.kind == "discovery":
            assert spec.discovery is not None  # the spec checks the reference
            return spec.discovery.fqdn(ref.name)
        if ref.kind == "service_connect":
            return sc.endpoints(spec)[ref.name].dns_name  # the spec checks the reference
        raise ValueError(f"{ref.text} cannot be resolved in the cloud")

    resolved: dict[str, str] = {}
    for key, value in values.items():
        parts = [part if isinstance(part, str) else lookup(part) for part in refs.split(value)]
        literal = all(not cdk.Token.is_unresolved(part) for part in parts)
        resolved[key] = "".join(parts) if literal or len(parts) == 1 else cdk.Fn.join("", parts)
    return resolved
