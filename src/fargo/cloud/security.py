"""Security group paths for the spec's ``calls``: who may open connections to whom.

Load balancer → task paths are opened when a service registers in a target group (CDK
adds the ingress rule on the task's group and the egress rule on the load balancer's).
Here, each service's ``calls`` list opens exactly the paths it names:

- a service: the callee's container port, from the caller's security group;
- an internal load balancer: its listener ports, from the caller's security group;
- an internet-facing load balancer: egress to its listener ports (the caller reaches it
  through the NAT gateway, so it arrives from the NAT's public address, already admitted).

`connect_endpoints` opens the paths to the VPC endpoints (`fargo.cloud.endpoints`): HTTPS
from each task's group to the endpoints' group, and, without a NAT gateway, the tasks'
only HTTPS egress: to that group and to S3's prefix list (the gateway endpoint).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from fargo.cloud import policy
from fargo.cloud.load_balancers import LoadBalancer
from fargo.cloud.network_parameters import (
    ENDPOINTS_SECURITY_GROUP,
    S3_PREFIX_LIST,
    imported_value,
)
from fargo.cloud.services import FargateService
from fargo.spec import egress
from fargo.spec.model import Spec


def connect_calls(
    spec: Spec,
    *,
    services: Mapping[str, FargateService],
    load_balancers: Mapping[str, LoadBalancer],
) -> None:
    for caller_name, caller_spec in spec.services.items():
        caller = services[caller_name]
        for callee_name in caller_spec.calls:
            if callee_name in services:
                callee = services[callee_name]
                caller.connections.allow_to(
                    callee.connections,
                    ec2.Port.tcp(callee.port),
                    f"{caller_name} calls {callee_name}",
                )
                continue
            balancer = load_balancers[callee_name]
            for listener in balancer.spec.listeners:
                port = ec2.Port.tcp(listener.port)
                if balancer.spec.scheme == "internal":
                    caller.connections.allow_to(
                        balancer.load_balancer.connections,
                        port,
                        f"{caller_name} calls load balancer {callee_name}",
                    )
                else:
                    caller.security_group.add_egress_rule(
                        ec2.Peer.any_ipv4(),
                        port,
                        f"{caller_name} calls load balancer {callee_name} (public)",
                    )


def connect_endpoints(
    scope: Construct, spec: Spec, *, services: Mapping[str, FargateService]
) -> None:
    """HTTPS from every task to the VPC endpoints; without a NAT gateway, nowhere else.

    The endpoints' security group and S3's prefix list live in the network stack; their
    ids come through its SSM parameters (no export). Each ECS service waits for its rules,
    so its first task does not try to pull before the endpoint admits it.
    """
    network = spec.network
    https = policy.TASK_EGRESS_HTTPS_PORT
    endpoints_group = (
        imported_value(scope, system=spec.name, key=ENDPOINTS_SECURITY_GROUP)
        if egress.interface_endpoints(network)
        else None
    )
    narrowed = not egress.reaches_internet(network)
    prefix_list = (
        imported_value(scope, system=spec.name, key=S3_PREFIX_LIST)
        if narrowed and "s3" in egress.gateway_endpoints(network)
        else None
    )
    for name, service in services.items():
        rules: list[cdk.CfnResource] = []
        task_group = service.security_group.security_group_id
        if endpoints_group is not None:
            rules.append(
                ec2.CfnSecurityGroupIngress(
                    scope,
                    f"{service.node.id}EndpointsIngress",
                    group_id=endpoints_group,
                    source_security_group_id=task_group,
                    ip_protocol="tcp",
                    from_port=https,
                    to_port=https,
                    description=f"tasks of {name} reach the VPC endpoints",
                )
            )
            if narrowed:
                rules.append(
                    _https_egress(
                        scope,
                        f"{service.node.id}EndpointsEgress",
                        task_group,
                        "HTTPS to the VPC interface endpoints (ECR, Logs, ...)",
                        destination_security_group_id=endpoints_group,
                    )
                )
        if prefix_list is not None:
            rules.append(
                _https_egress(
                    scope,
                    f"{service.node.id}S3Egress",
                    task_group,
                    "HTTPS to S3 through the gateway endpoint (image layers)",
                    destination_prefix_list_id=prefix_list,
                )
            )
        for rule in rules:
            service.service.node.add_dependency(rule)


def _https_egress(
    scope: Construct, id: str, group: str, description: str, **destination: str
) -> ec2.CfnSecurityGroupEgress:
    """A task group's egress on HTTPS to ``destination`` (a group or a prefix list)."""
    https = policy.TASK_EGRESS_HTTPS_PORT
    return ec2.CfnSecurityGroupEgress(
        scope,
        id,
        group_id=group,
        ip_protocol="tcp",
        from_port=https,
        to_port=https,
        description=description,
        **destination,
    )


# What CDK writes into a group that may send nothing: a rule no packet can match.
_NO_TRAFFIC = {
    "CidrIp": "255.255.255.255/32",
    "Description": "Disallow all traffic",
    "IpProtocol": "icmp",
    "FromPort": 252,
    "ToPort": 86,
}


def seal_egress(groups: Iterable[ec2.SecurityGroup]) -> None:
    """Keep EC2's default allow-all egress rule off groups whose egress is all separate rules.

    EC2 gives a new security group an allow-all egress rule unless the group's own
    ``SecurityGroupEgress`` lists rules. CDK moves rules that name another security group
    into separate ``SecurityGroupEgress`` resources and then leaves the list empty, so a
    load balancer's group would be open outward. Call after every rule is added.
    """
    for group in groups:
        cfn = group.node.default_child
        assert isinstance(cfn, ec2.CfnSecurityGroup)
        if not cdk.Stack.of(group).resolve(cfn.security_group_egress):
            cfn.add_property_override("SecurityGroupEgress", [_NO_TRAFFIC])
