"""ALB target groups of type ``ip``: the spec's health checks and deregistration delay."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from constructs import Construct

from fargo.cloud import policy
from fargo.cloud.names import pascal
from fargo.spec.model import Spec

# The tag (and template metadata) naming a target group's spec name.
TARGET_GROUP_TAG = "fargo:target-group"
# A target group that no service registers in still needs a port.
UNUSED_TARGET_GROUP_PORT = 80


class TargetGroups(Construct):
    """One target group per spec entry; Fargate tasks register by IP on their container port.

    Each carries its spec name as the tag ``fargo:target-group`` and in its template
    metadata, so the synthesized template can be read back in spec terms.

    Children: ``target_groups`` (spec name → target group).
    """

    def __init__(self, scope: Construct, id: str, *, spec: Spec, vpc: ec2.IVpc) -> None:
        super().__init__(scope, id)
        self.target_groups: dict[str, elbv2.ApplicationTargetGroup] = {}
        for name, group in spec.target_groups.items():
            members = spec.services_in(name)
            port = spec.services[members[0]].port if members else UNUSED_TARGET_GROUP_PORT
            check = group.health_check
            target_group = elbv2.ApplicationTargetGroup(
                self,
                pascal(name),
                vpc=vpc,
                target_type=elbv2.TargetType.IP,
                protocol=elbv2.ApplicationProtocol.HTTP,
                port=port,
                deregistration_delay=cdk.Duration.seconds(group.deregistration_delay),
                health_check=elbv2.HealthCheck(
                    enabled=True,
                    protocol=elbv2.Protocol.HTTP,
                    path=check.path,
                    interval=cdk.Duration.seconds(check.interval),
                    timeout=cdk.Duration.seconds(check.timeout),
                    healthy_threshold_count=check.healthy_threshold,
                    unhealthy_threshold_count=check.unhealthy_threshold,
                    healthy_http_codes=check.matcher,
                ),
            )
            cdk.Tags.of(target_group).add(TARGET_GROUP_TAG, name)
            cfn = target_group.node.default_child
            assert isinstance(cfn, cdk.CfnResource)
            cfn.add_metadata(policy.METADATA_KEY, {"target_group": name})
            self.target_groups[name] = target_group
