"""VPC endpoints: the AWS services private tasks reach without the NAT gateway.

    endpoints = VpcEndpoints(network_stack, "Endpoints", vpc=vpc, network=spec.network)
    endpoints.security_group       # admits 443 only from the rules the app stack adds
    endpoints.s3_prefix_list_id    # the S3 prefix list's id (no NAT gateway), else None

- an interface endpoint per spec name (``ecr.api``, ``ecr.dkr``, ``logs``, …) in every
  private subnet, with private DNS, so the services' usual names resolve to it inside
  the VPC; all of them share one security group that admits nothing by itself: the app
  stack opens 443 from each task's security group (`fargo.cloud.security`);
- a gateway endpoint per gateway name (``s3``, ``dynamodb``) on the private subnets'
  route tables;
- endpoint policies narrow what passes: the ECR endpoints serve image pulls from this
  account's repositories only, the S3 endpoint reads ECR's layer bucket only (fargo's
  task roles have no AWS permissions, so nothing else of S3 is used from the subnets);
- without a NAT gateway, tasks may send HTTPS only to the endpoints' security group and
  to S3's addresses. Those are AWS's managed prefix list ``com.amazonaws.<region>.s3``,
  whose id differs by region and is not a CloudFormation attribute of the endpoint, so a
  CDK ``AwsCustomResource`` looks it up at deploy time (``DescribeManagedPrefixLists``).
  A synth-time lookup (``PrefixList.from_lookup``) would need an account at synth, and a
  table of ids would go stale; the custom resource needs neither.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import custom_resources as cr
from constructs import Construct

from fargo.cloud import acknowledgements as ack
from fargo.cloud.names import pascal
from fargo.spec import egress
from fargo.spec.model import Network as NetworkSpec

# ECR keeps image layers in this AWS-owned bucket; the S3 endpoint lets tasks read it.
ECR_LAYER_BUCKET = "prod-{region}-starport-layer-bucket"
# What the ECS agent does with ECR when it pulls a task's image (the execution role's grant).
ECR_PULL_ACTIONS = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchGetImage",
)
ECR_ENDPOINTS = frozenset({"ecr.api", "ecr.dkr"})
# The id of the CDK's singleton handler behind every AwsCustomResource of a stack.
HANDLER_ID = "AWS" + cr.AwsCustomResource.PROVIDER_FUNCTION_UUID.replace("-", "")


class VpcEndpoints(Construct):
    """The spec's VPC endpoints in the private subnets of ``vpc``.

    Children: ``security_group`` (None without interface endpoints), ``interface``
    and ``gateway`` (spec name → endpoint), ``s3_prefix_list_id`` (a deploy-time token,
    or None: only looked up when the egress of tasks is narrowed, without NAT gateway).
    """

    def __init__(self, scope: Construct, id: str, *, vpc: ec2.IVpc, network: NetworkSpec) -> None:
        super().__init__(scope, id)
        private = ec2.SubnetSelection(
            subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS
            if network.nat_gateways > 0
            else ec2.SubnetType.PRIVATE_ISOLATED
        )
        self.interface: dict[str, ec2.InterfaceVpcEndpoint] = {}
        self.gateway: dict[str, ec2.GatewayVpcEndpoint] = {}
        self.security_group: ec2.SecurityGroup | None = None
        names = egress.interface_endpoints(network)
        if names:
            self.security_group = ec2.SecurityGroup(
                self,
                "SecurityGroup",
                vpc=vpc,
                description="VPC interface endpoints: HTTPS from the security groups of the tasks",
                # An endpoint only answers; it never opens a connection.
                allow_all_outbound=False,
            )
        for name in names:
            assert self.security_group is not None
            endpoint = ec2.InterfaceVpcEndpoint(
                self,
                pascal(name),
                vpc=vpc,
                service=ec2.InterfaceVpcEndpointAwsService(name),
                subnets=private,
                private_dns_enabled=True,
                security_groups=[self.security_group],
                # Not the CDK's default ingress from the whole VPC: only the tasks'.
                open=False,
            )
            if name in ECR_ENDPOINTS:
                _ecr_policy(endpoint)
            self.interface[name] = endpoint
        for name in egress.gateway_endpoints(network):
            endpoint_gateway = ec2.GatewayVpcEndpoint(
                self,
                pascal(name),
                vpc=vpc,
                service=ec2.GatewayVpcEndpointAwsService(name),
                subnets=[private],
            )
            if name == "s3":
                _s3_policy(endpoint_gateway)
            self.gateway[name] = endpoint_gateway
        self.s3_prefix_list_id: str | None = None
        if "s3" in self.gateway and network.nat_gateways == 0:
            self.s3_prefix_list_id = _s3_prefix_list_id(self)


def _ecr_policy(endpoint: ec2.InterfaceVpcEndpoint) -> None:
    """Image pulls from this account's repositories (plus the token, which has no ARN)."""
    account, region, partition = cdk.Aws.ACCOUNT_ID, cdk.Aws.REGION, cdk.Aws.PARTITION
    endpoint.add_to_policy(
        iam.PolicyStatement(
            sid="PullFromThisAccount",
            principals=[iam.AnyPrincipal()],
            actions=list(ECR_PULL_ACTIONS),
            resources=[f"arn:{partition}:ecr:{region}:{account}:repository/*"],
        )
    )
    endpoint.add_to_policy(
        iam.PolicyStatement(
            sid="AuthorizationToken",
            principals=[iam.AnyPrincipal()],
            actions=["ecr:GetAuthorizationToken"],
            resources=["*"],
        )
    )


def _s3_policy(endpoint: ec2.GatewayVpcEndpoint) -> None:
    """Reads of ECR's layer bucket in this region, nothing else of S3 (AWS's documented
    minimum for image pulls through a gateway endpoint)."""
    bucket = ECR_LAYER_BUCKET.format(region=cdk.Aws.REGION)
    endpoint.add_to_policy(
        iam.PolicyStatement(
            sid="EcrImageLayers",
            principals=[iam.AnyPrincipal()],
            actions=["s3:GetObject"],
            resources=[f"arn:{cdk.Aws.PARTITION}:s3:::{bucket}/*"],
        )
    )


def _s3_prefix_list_id(scope: Construct) -> str:
    """``com.amazonaws.<region>.s3``'s id, read once per deploy of the network stack."""
    name = egress.service_name("s3", cdk.Aws.REGION)
    call = cr.AwsSdkCall(
        service="EC2",
        action="DescribeManagedPrefixLists",
        parameters={"Filters": [{"Name": "prefix-list-name", "Values": [name]}]},
        physical_resource_id=cr.PhysicalResourceId.of(name),
        output_paths=["PrefixLists.0.PrefixListId"],
    )
    lookup = cr.AwsCustomResource(
        scope,
        "S3PrefixList",
        on_create=call,
        on_update=call,
        # DescribeManagedPrefixLists has no resource-level permissions: '*' (acknowledged).
        policy=cr.AwsCustomResourcePolicy.from_sdk_calls(
            resources=cr.AwsCustomResourcePolicy.ANY_RESOURCE
        ),
        install_latest_aws_sdk=False,
        log_retention=None,
        timeout=cdk.Duration.minutes(2),
    )
    _tidy_handler(lookup)
    return lookup.get_response_field("PrefixLists.0.PrefixListId")


def _tidy_handler(lookup: cr.AwsCustomResource) -> None:
    """Acknowledge what the CDK's handler fails, with reasons; drop its DependsOn on its
    role (the role's ``Fn::GetAtt`` already orders them; cfn-lint W3005)."""
    stack = cdk.Stack.of(lookup)
    function = stack.node.try_find_child(HANDLER_ID)
    policy = lookup.node.try_find_child("CustomResourcePolicy")
    if function is None or policy is None:
        raise RuntimeError("AwsCustomResource has no handler or policy: the CDK changed")
    cfn_function = function.node.default_child
    if not isinstance(cfn_function, cdk.CfnResource):
        raise RuntimeError("AwsCustomResource's handler is no Lambda function: the CDK changed")
    cfn_function.add_deletion_override("DependsOn")
    ack.prefix_list_lookup(policy, function)
