"""Security group paths for the spec's ``calls``: who may open connections to whom.

Load balancer → task paths are opened when a service registers in a target group (CDK
adds the ingress rule on the task's group and the egress rule on the load balancer's).
Here, each service's ``calls`` list opens exactly the paths it names:

- a service: the callee's container port, from the caller's security group;
- an internal load balancer: its listener ports, from the caller's security group;
- an internet-facing load balancer: egress to its listener ports (the caller reaches it
  through the NAT gateway, so it arrives from the NAT's public address, already admitted).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2

from fargo.cloud.load_balancers import LoadBalancer
from fargo.cloud.services import FargateService
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
