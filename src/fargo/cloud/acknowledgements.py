"""Every acknowledged finding of cdk-nag and checkov, with the reason, in one place.

A construct that knowingly departs from a rule calls the function named after its
situation here; the function acknowledges the cdk-nag rule (``Validations.acknowledge``,
recorded in the cloud assembly's validation report) and/or writes checkov's skip into the
resource's template ``Metadata`` (``checkov: skip: [{id, comment}]``), so the template
itself carries the reason. `ACKNOWLEDGEMENTS` lists them all for docs and tests.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import aws_cdk as cdk
from constructs import IConstruct

NAG_PACK = "AwsSolutions"


@dataclass(frozen=True)
class Acknowledgement:
    """A rule knowingly not followed, and why. ``finding`` narrows a rule to one finding."""

    rule: str  # "AwsSolutions-EC23" (cdk-nag) or "CKV_AWS_260" (checkov)
    reason: str
    finding: str = ""  # cdk-nag's finding id, e.g. "Resource::*" for AwsSolutions-IAM5

    @property
    def tool(self) -> str:
        return "cdk-nag" if self.rule.startswith(f"{NAG_PACK}-") else "checkov"

    @property
    def nag_id(self) -> str:
        suffix = f"[{self.finding}]" if self.finding else ""
        return f"{NAG_PACK}::{self.rule}{suffix}"


# --- cdk-nag -------------------------------------------------------------------------

PUBLIC_LISTENER_INGRESS = Acknowledgement(
    "AwsSolutions-EC23",
    "An internet-facing load balancer serves the public: its security group admits its "
    "listener ports from any address, and nothing else.",
)
ENVIRONMENT_IN_TASK_DEFINITION = Acknowledgement(
    "AwsSolutions-ECS2",
    "Container environment values come from fargo.yaml: endpoints (load balancer DNS "
    "names, Cloud Map names) and settings; secrets are the container's Secrets (SSM and "
    "Secrets Manager ARNs, from the service's secrets: section). Acknowledged only for a "
    "service none of whose environment values looks like a secret (by name, or an AWS "
    "key); any other gets this finding.",
)
CONTAINER_INSIGHTS_OFF = Acknowledgement(
    "AwsSolutions-ECS4",
    "The spec turns Container Insights off, a cost trade-off (it bills each of its metrics, "
    "about 28 a service: see `fargo cost`). ECS's own CPUUtilization and "
    "MemoryUtilization per service, which autoscaling tracks, stay on at no charge; "
    "`cluster.container_insights: true` adds the per-task metrics.",
)
ECR_AUTHORIZATION_TOKEN = Acknowledgement(
    "AwsSolutions-IAM5",
    "These actions have no resource-level permissions, so a policy must name Resource '*' "
    "for them: ecr:GetAuthorizationToken (each execution role; its image pulls are scoped "
    "to the repository), ec2:DescribeManagedPrefixLists (the lookup of S3's prefix list "
    "when tasks have no NAT gateway; it reads, and only that action), and X-Ray's segment "
    "and sampling actions (the task role of a traced service, spec tracing: xray: "
    "xray:PutTraceSegments, PutTelemetryRecords, GetSamplingRules, GetSamplingTargets, "
    "GetSamplingStatisticSummaries, and nothing else).",
    finding="Resource::*",
)
PREFIX_LIST_LOOKUP_LOGS = Acknowledgement(
    "AwsSolutions-IAM4",
    "The CDK's AwsCustomResource handler (the S3 prefix list lookup) writes its own logs "
    "with AWSLambdaBasicExecutionRole (logs:CreateLogGroup, CreateLogStream, PutLogEvents); "
    "its one API permission is a separate inline policy.",
    finding="Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
)
ACCESS_LOG_BUCKET_LOGGING = Acknowledgement(
    "AwsSolutions-S1",
    "This bucket receives the load balancers' access logs; logging the log bucket's own "
    "access would need yet another bucket, and so on.",
)

# --- checkov -------------------------------------------------------------------------

LOG_GROUP_KMS = Acknowledgement(
    "CKV_AWS_158",
    "CloudWatch Logs encrypts log data at rest with service-managed keys. A customer "
    "managed KMS key would add a second authorization (the key policy) on top of IAM; "
    "fargo leaves it out as a cost and operations trade-off (a key per system, its "
    "policy and rotation to run).",
)
ECR_KMS = Acknowledgement(
    "CKV_AWS_136",
    "Images are encrypted at rest with AES-256 (ECR's managed encryption). A customer "
    "managed KMS key would add a second authorization (the key policy) to every pull; "
    "fargo leaves it out as a cost and operations trade-off.",
)
PUBLIC_HTTP_INGRESS = Acknowledgement(
    "CKV_AWS_260",
    "Port 80 on the internet-facing load balancer only answers with a 301 redirect to "
    "HTTPS, so browsers typing the bare domain arrive at TLS.",
)
INTERNAL_HTTP_LISTENER = Acknowledgement(
    "CKV_AWS_2",
    "An internal load balancer in the private subnets, reachable only from the security "
    "groups of the services that call it; the spec chose plain HTTP on this listener.",
)
INTERNAL_HTTP_NO_TLS = Acknowledgement("CKV_AWS_103", INTERNAL_HTTP_LISTENER.reason)
CONTAINER_INSIGHTS_OFF_CHECKOV = Acknowledgement("CKV_AWS_65", CONTAINER_INSIGHTS_OFF.reason)
# The CDK's custom resource handlers in the network stack: one revokes the default security
# group's rules, one looks up S3's prefix list (tasks without a NAT gateway).
_RESTRICT_DEFAULT_SG = (
    "The CDK's custom resource handlers in the network stack (one removes the default "
    "security group's rules; one looks up S3's prefix list for tasks without a NAT "
    "gateway); CloudFormation calls them synchronously, once per deploy of the stack"
)
HANDLER_CONCURRENCY = Acknowledgement(
    "CKV_AWS_115",
    f"{_RESTRICT_DEFAULT_SG}: a concurrency reservation would only take capacity from "
    "the account's pool.",
)
HANDLER_DEAD_LETTER_QUEUE = Acknowledgement(
    "CKV_AWS_116",
    f"{_RESTRICT_DEFAULT_SG}: a failure fails the stack update itself, so no event is "
    "lost for a dead-letter queue to keep.",
)
HANDLER_OUTSIDE_VPC = Acknowledgement(
    "CKV_AWS_117",
    f"{_RESTRICT_DEFAULT_SG}: it only calls the EC2 API; inside the VPC it would need the "
    "NAT gateway or an endpoint to reach it.",
)
ACCESS_LOG_BUCKET_ACCESS_LOGGING = Acknowledgement("CKV_AWS_18", ACCESS_LOG_BUCKET_LOGGING.reason)
ACKNOWLEDGEMENTS: tuple[Acknowledgement, ...] = tuple(
    value for value in list(globals().values()) if isinstance(value, Acknowledgement)
)


def acknowledge(construct: IConstruct, *acks: Acknowledgement) -> None:
    """Acknowledge ``acks`` on ``construct`` (cdk-nag) and its L1 resource (checkov)."""
    nag = [ack for ack in acks if ack.tool == "cdk-nag"]
    if nag:
        cdk.Validations.of(construct).acknowledge(
            *(cdk.Acknowledgment(id=ack.nag_id, reason=ack.reason) for ack in nag)
        )
    checkov = [ack for ack in acks if ack.tool == "checkov"]
    if checkov:
        _skip_checkov(_cfn_resource(construct), checkov)


def _cfn_resource(construct: IConstruct) -> cdk.CfnResource:
    if isinstance(construct, cdk.CfnResource):
        return construct
    child = construct.node.default_child
    if not isinstance(child, cdk.CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource to annotate")
    return child


def _skip_checkov(resource: cdk.CfnResource, acks: Iterable[Acknowledgement]) -> None:
    existing = resource.get_metadata("checkov") or {}
    skips: list[dict[str, str]] = list(existing.get("skip", []))
    known = {skip["id"] for skip in skips}
    skips += [{"id": ack.rule, "comment": ack.reason} for ack in acks if ack.rule not in known]
    resource.add_metadata("checkov", {"skip": skips})


# --- situations ----------------------------------------------------------------------


def log_group(group: IConstruct) -> None:
    acknowledge(group, LOG_GROUP_KMS)


def ecr_repository(repository: IConstruct) -> None:
    acknowledge(repository, ECR_KMS)


def access_log_bucket(bucket: IConstruct) -> None:
    acknowledge(bucket, ACCESS_LOG_BUCKET_LOGGING, ACCESS_LOG_BUCKET_ACCESS_LOGGING)


def public_security_group(group: IConstruct, *, http_only_redirects: bool) -> None:
    """``http_only_redirects``: the load balancer has HTTP listeners, and each only redirects
    to HTTPS (an HTTP listener that serves content is a finding left for the user)."""
    acknowledge(
        group, PUBLIC_LISTENER_INGRESS, *([PUBLIC_HTTP_INGRESS] if http_only_redirects else [])
    )


def internal_http_listener(listener: IConstruct) -> None:
    acknowledge(listener, INTERNAL_HTTP_LISTENER, INTERNAL_HTTP_NO_TLS)


def cluster_without_container_insights(cluster: IConstruct) -> None:
    acknowledge(cluster, CONTAINER_INSIGHTS_OFF, CONTAINER_INSIGHTS_OFF_CHECKOV)


def task_definition(task_definition: IConstruct) -> None:
    acknowledge(task_definition, ENVIRONMENT_IN_TASK_DEFINITION)


def default_security_group_handler(handler: IConstruct) -> None:
    acknowledge(handler, HANDLER_CONCURRENCY, HANDLER_DEAD_LETTER_QUEUE, HANDLER_OUTSIDE_VPC)


def prefix_list_lookup(policy: IConstruct, handler: IConstruct) -> None:
    """The S3 prefix list lookup: its policy (``*``) and the CDK's handler function."""
    acknowledge(policy, ECR_AUTHORIZATION_TOKEN)
    acknowledge(
        handler,
        PREFIX_LIST_LOOKUP_LOGS,
        HANDLER_CONCURRENCY,
        HANDLER_DEAD_LETTER_QUEUE,
        HANDLER_OUTSIDE_VPC,
    )


def xray_task_role(role: IConstruct) -> None:
    acknowledge(role, ECR_AUTHORIZATION_TOKEN)


def execution_role_policy(policy: IConstruct) -> None:
    acknowledge(policy, ECR_AUTHORIZATION_TOKEN)
