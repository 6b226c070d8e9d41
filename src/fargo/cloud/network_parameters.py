"""The VPC's ids, handed from the network stack to the app stack through SSM parameters.

    NetworkParameters(network_stack, "Parameters", system="fargo-demo", network=network)
    vpc = imported_vpc(app_stack, "Vpc", system="fargo-demo", network=spec.network)

A CloudFormation export would lock the network stack: while the app stack imports a
value, no update may change or remove it ("Export … cannot be updated as it is in
use"), so changing subnets or the number of zones would fail. SSM parameters have no
such lock: the network stack writes them, and every deploy of the app stack reads
their current values (``AWS::SSM::Parameter::Value<String>`` template parameters).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from fargo.cloud.network import Network
from fargo.spec.model import Network as NetworkSpec


def parameter_name(system: str, key: str) -> str:
    """``/fargo/<system>/network/<key>``, e.g. ``/fargo/fargo-demo/network/vpc-id``."""
    return f"/fargo/{system}/network/{key}"


# The VPC endpoints' security group (tasks open HTTPS to it) and, without a NAT gateway,
# S3's managed prefix list (tasks may send HTTPS only there and to the endpoints).
ENDPOINTS_SECURITY_GROUP = "vpc-endpoints-security-group"
S3_PREFIX_LIST = "s3-prefix-list"


def _keys(zones: int) -> list[str]:
    return [
        "vpc-id",
        *(f"public-subnet-{i}" for i in range(zones)),
        *(f"private-subnet-{i}" for i in range(zones)),
    ]


class NetworkParameters(Construct):
    """One String parameter per id: the VPC and each public and private subnet, by zone;
    the endpoints' security group and S3's prefix list when the network has them."""

    def __init__(self, scope: Construct, id: str, *, system: str, network: Network) -> None:
        super().__init__(scope, id)
        vpc = network.vpc
        private = vpc.private_subnets or vpc.isolated_subnets
        values = [
            vpc.vpc_id,
            *(s.subnet_id for s in vpc.public_subnets),
            *(s.subnet_id for s in private),
        ]
        parameters = dict(zip(_keys(len(vpc.public_subnets)), values, strict=True))
        endpoints = network.endpoints
        if endpoints.security_group is not None:
            parameters[ENDPOINTS_SECURITY_GROUP] = endpoints.security_group.security_group_id
        if endpoints.s3_prefix_list_id is not None:
            parameters[S3_PREFIX_LIST] = endpoints.s3_prefix_list_id
        for key, value in parameters.items():
            ssm.StringParameter(
                self,
                key,
                parameter_name=parameter_name(system, key),
                string_value=value,
                description=f"{system}: {key} (read by the app stack on each deploy)",
            )


def imported_vpc(scope: Construct, id: str, *, system: str, network: NetworkSpec) -> ec2.IVpc:
    """The network stack's VPC, from its parameters' values at deploy time."""
    zones = network.availability_zones

    def value(key: str) -> str:
        return ssm.StringParameter.value_for_string_parameter(scope, parameter_name(system, key))

    private = [value(f"private-subnet-{i}") for i in range(zones)]
    routed = network.nat_gateways > 0
    return ec2.Vpc.from_vpc_attributes(
        scope,
        id,
        vpc_id=value("vpc-id"),
        vpc_cidr_block=str(network.cidr),
        availability_zones=[cdk.Fn.select(i, cdk.Fn.get_azs()) for i in range(zones)],
        public_subnet_ids=[value(f"public-subnet-{i}") for i in range(zones)],
        private_subnet_ids=private if routed else None,
        isolated_subnet_ids=None if routed else private,
    )


def imported_value(scope: Construct, *, system: str, key: str) -> str:
    """The current value of one of the network's parameters, read at deploy time."""
    return ssm.StringParameter.value_for_string_parameter(scope, parameter_name(system, key))


def private_subnets(network: NetworkSpec) -> ec2.SubnetSelection:
    """Where tasks (and the internal load balancer) run: routed through NAT, or isolated."""
    return ec2.SubnetSelection(
        subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS
        if network.nat_gateways > 0
        else ec2.SubnetType.PRIVATE_ISOLATED
    )
