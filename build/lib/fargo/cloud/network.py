"""The VPC: the spec's CIDR over its Availability Zones, exact subnets, IGW, NAT, flow logs."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from fargo.cloud.logs import log_group
from fargo.spec.model import Network as NetworkSpec

PUBLIC = "public"
PRIVATE = "private"


class Network(Construct):
    """A VPC whose public and private subnets have exactly the spec's CIDR blocks.

    ``ec2.Vpc`` lays subnets out by mask; each subnet's block is then set to the spec's.
    Availability Zones are the region's first N (``Fn::GetAZs``), so synth needs no account.

    Children: ``vpc``, ``flow_log_group`` (None without flow logs).
    """

    def __init__(
        self, scope: Construct, id: str, *, network: NetworkSpec, log_retention_days: int
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
            restrict_default_security_group=False,
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

        self.flow_log_group: logs.LogGroup | None = None
        if network.flow_logs:
            self.flow_log_group = log_group(self, "FlowLogs", retention_days=log_retention_days)
            self.vpc.add_flow_log(
                "FlowLog",
                destination=ec2.FlowLogDestination.to_cloud_watch_logs(self.flow_log_group),
                traffic_type=ec2.FlowLogTrafficType.ALL,
            )

    @property
    def private_subnets(self) -> ec2.SubnetSelection:
        return ec2.SubnetSelection(
            subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS
            if self.vpc.private_subnets
            else ec2.SubnetType.PRIVATE_ISOLATED
        )
