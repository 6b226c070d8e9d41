"""The VPC: the spec's CIDR over its Availability Zones, exact subnets, IGW, NAT, VPC
endpoints, flow logs."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from fargo.cloud import acknowledgements as ack
from fargo.cloud import policy
from fargo.cloud.endpoints import VpcEndpoints
from fargo.cloud.logs import log_group
from fargo.spec.model import Network as NetworkSpec

PUBLIC = "public"
PRIVATE = "private"


class Network(Construct):
    """A VPC whose public and private subnets have exactly the spec's CIDR blocks.

    ``ec2.Vpc`` lays subnets out by mask; each subnet's block is then set to the spec's.
    Availability Zones are the region's first N (``Fn::GetAZs``), so synth needs no account.

    Children: ``vpc``, ``endpoints`` (`VpcEndpoints`, possibly none of them),
    ``flow_log_group`` (None without flow logs).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        network: NetworkSpec,
        log_retention_days: int,
        system: str = "",
    ) -> None:
        super().__init__(scope, id)
        subnets = network.subnets
        private_type = (
            ec2.SubnetType.PRIVATE_WITH_EGRESS
            if network.nat_gateways > 0
            else ec2.SubnetType.PRIVATE_ISOLATED
        )
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(str(network.cidr)),
            availability_zones=[
                cdk.Fn.select(index, cdk.Fn.get_azs())
                for index in range(network.availability_zones)
            ],
            nat_gateways=network.nat_gateways,
            # The layout only has to fit; every block is replaced by the spec's below.
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name=PUBLIC,
                    subnet_type=ec2.SubnetType.PUBLIC,
                    cidr_mask=max(net.prefixlen for net in subnets.public),
                    # Nothing in a public subnet needs an address of its own: the ALB and
                    # the NAT gateway have theirs.
                    map_public_ip_on_launch=False,
                ),
                ec2.SubnetConfiguration(
                    name=PRIVATE,
                    subnet_type=private_type,
                    cidr_mask=max(net.prefixlen for net in subnets.private),
                ),
            ],
            enable_dns_hostnames=True,  # Cloud Map private DNS needs both
            enable_dns_support=True,
            # The default security group admits nothing (a custom resource revokes its rules):
            # nothing uses it, and nothing should by accident.
            restrict_default_security_group=True,
        )
        for subnet, cidr in [
            *zip(self.vpc.public_subnets, subnets.public, strict=True),
            *zip(
                self.vpc.private_subnets or self.vpc.isolated_subnets, subnets.private, strict=True
            ),
        ]:
            cfn = subnet.node.default_child
            assert isinstance(cfn, ec2.CfnSubnet)
            cfn.cidr_block = str(cidr)

        _tidy_default_security_group_handler(cdk.Stack.of(self), system)
        self.endpoints = VpcEndpoints(self, "Endpoints", vpc=self.vpc, network=network)

        self.flow_log_group: logs.LogGroup | None = None
        if network.flow_logs:
            self.flow_log_group = log_group(self, "FlowLogs", retention_days=log_retention_days)
            self.vpc.add_flow_log(
                "FlowLog",
                destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                    self.flow_log_group, _flow_log_role(self)
                ),
                traffic_type=ec2.FlowLogTrafficType.ALL,
            )


def _flow_log_role(scope: Construct) -> iam.Role:
    """The role VPC Flow Logs assumes to write, for this account's flow logs only (no
    confused deputy); the CDK grants it the log group."""
    account, region, partition = cdk.Aws.ACCOUNT_ID, cdk.Aws.REGION, cdk.Aws.PARTITION
    return iam.Role(
        scope,
        "FlowLogRole",
        assumed_by=iam.ServicePrincipal(
            "vpc-flow-logs.amazonaws.com",
            conditions={
                "StringEquals": {"aws:SourceAccount": account},
                "ArnLike": {
                    "aws:SourceArn": f"arn:{partition}:ec2:{region}:{account}:vpc-flow-log/*"
                },
            },
        ),
    )


# The CDK's provider behind ``restrict_default_security_group``: one per stack.
RESTRICT_DEFAULT_SG_PROVIDER = "Custom::VpcRestrictDefaultSGCustomResourceProvider"


def _tidy_default_security_group_handler(stack: cdk.Stack, system: str) -> None:
    """Acknowledge the checks the CDK's handler fails, with reasons; drop its DependsOn
    on its role (the role's ``Fn::GetAtt`` already orders them; cfn-lint W3005); tag
    both with the system (they are plain CloudFormation resources, which tags skip)."""
    provider = stack.node.try_find_child(RESTRICT_DEFAULT_SG_PROVIDER)
    handler = provider.node.try_find_child("Handler") if provider is not None else None
    role = provider.node.try_find_child("Role") if provider is not None else None
    if not isinstance(handler, cdk.CfnResource) or not isinstance(role, cdk.CfnResource):
        raise RuntimeError(f"{RESTRICT_DEFAULT_SG_PROVIDER} has no handler: the CDK changed")
    handler.add_deletion_override("DependsOn")
    ack.default_security_group_handler(handler)
    if system:
        for resource in (handler, role):
            resource.add_property_override("Tags", [{"Key": policy.SYSTEM_TAG, "Value": system}])
