"""A service's secrets in the task definition, and the execution role's right to read them.

ECS reads each secret when a task starts, with the task's execution role, and sets it in
the container's environment: the template holds the container's ``Secrets`` (name →
``valueFrom``, an ARN) and the role's grants, never a value. The grants are exactly what
the ECS agent calls, on exactly those resources:

- an SSM parameter: ``ssm:GetParameters`` on the parameter's ARN;
- a Secrets Manager secret: ``secretsmanager:GetSecretValue`` on the secret's ARN (a name
  without its random suffix gets ``NAME-??????``, the suffix Secrets Manager adds);
- a customer managed KMS key (``kms_key``): ``kms:Decrypt`` on that key, only through
  SSM or Secrets Manager (``kms:ViaService``). The AWS managed keys need no grant.

CDK's ``ecs.Secret`` would grant more (``ssm:GetParameterHistory`` reads past values,
``secretsmanager:DescribeSecret``), so the container's ``Secrets`` are written here.

    grant_secrets(task_definition, execution_role, service.secrets)
"""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam

from fargo.spec.secrets import RANDOM_SUFFIX_WILDCARD, Secret, SecretReference

# What the ECS agent calls to read a secret (AWS: "Required IAM permissions for Amazon ECS
# secrets").
READ_ACTION = {"ssm": "ssm:GetParameters", "secretsmanager": "secretsmanager:GetSecretValue"}
DECRYPT_ACTION = "kms:Decrypt"


def arn_of(reference: SecretReference) -> str:
    """The secret's ARN as ECS and IAM name it (the stack's partition, region and account
    as tokens for a name); without the ``valueFrom`` selector."""
    arn = reference.arn
    partition = arn.partition if arn else cdk.Aws.PARTITION
    region = arn.region if arn else cdk.Aws.REGION
    account = arn.account if arn else cdk.Aws.ACCOUNT_ID
    return f"arn:{partition}:{reference.service}:{region}:{account}:{reference.resource}"


def value_from(secret: Secret) -> str:
    """The container secret's ``valueFrom``: the ARN, and ECS's selector for a JSON key or
    a version of a Secrets Manager secret."""
    reference = secret.reference()
    return arn_of(reference) + reference.selector


def granted_resource(secret: Secret) -> str:
    """The resource the execution role may read: the ARN, with the random suffix as a
    wildcard when the spec named the secret without it."""
    reference = secret.reference()
    wildcard = RANDOM_SUFFIX_WILDCARD if not reference.complete else ""
    return arn_of(reference) + wildcard


def grant_secrets(
    task_definition: ecs.FargateTaskDefinition,
    execution_role: iam.Role,
    secrets: Mapping[str, Secret],
) -> None:
    """Put ``secrets`` in the task definition's (one) container and let ``execution_role``
    read exactly them."""
    if not secrets:
        return
    cfn = task_definition.node.default_child
    assert isinstance(cfn, ecs.CfnTaskDefinition)
    cfn.add_property_override(
        "ContainerDefinitions.0.Secrets",
        [{"Name": name, "ValueFrom": value_from(secret)} for name, secret in secrets.items()],
    )
    by_action: dict[str, list[str]] = {}
    decrypt: dict[str, set[str]] = {}  # key ARN → the services that decrypt with it
    for secret in secrets.values():
        reference = secret.reference()
        resources = by_action.setdefault(READ_ACTION[reference.service], [])
        resource = granted_resource(secret)
        if resource not in resources:
            resources.append(resource)
        if secret.kms_key is not None:
            region = reference.region or cdk.Aws.REGION
            # As CDK's own grants name the service: SERVICE.REGION.amazonaws.com.
            decrypt.setdefault(secret.kms_key, set()).add(
                f"{reference.service}.{region}.amazonaws.com"
            )
    for action, resources in by_action.items():
        execution_role.add_to_policy(iam.PolicyStatement(actions=[action], resources=resources))
    for key, services in decrypt.items():
        execution_role.add_to_policy(
            iam.PolicyStatement(
                actions=[DECRYPT_ACTION],
                resources=[key],
                conditions={"StringEquals": {"kms:ViaService": sorted(services)}},
            )
        )
