"""What an AWS account needs before the first deploy, found or made by `fargo deploy`.

- ECS's service-linked role (and Application Auto Scaling's for ECS when a service
  scales): CloudFormation does not create them, and on a fresh account the first
  ``CreateService`` fails with "Unable to assume the service linked role";
- the CDK bootstrap stack: ``cdk bootstrap`` runs only when the environment's
  ``/cdk-bootstrap/<qualifier>/version`` parameter is missing or too old, so a CI role
  that deploys needs no rights to create IAM roles (docs/cloud.md lists what it needs).

Each function takes a boto3 client (or a stubbed one in the tests).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fargo.spec.model import Spec

BOOTSTRAP_QUALIFIER = "hnb659fds"  # the CDK's default
# The oldest bootstrap stack the CDK's synthesized templates accept (their
# ``CheckBootstrapVersion`` rule).
MIN_BOOTSTRAP_VERSION = 6


@dataclass(frozen=True)
class ServiceLinkedRole:
    service: str  # the AWSServiceName
    role_name: str


ECS_ROLE = ServiceLinkedRole("ecs.amazonaws.com", "AWSServiceRoleForECS")
ECS_SCALING_ROLE = ServiceLinkedRole(
    "ecs.application-autoscaling.amazonaws.com",
    "AWSServiceRoleForApplicationAutoScaling_ECSService",
)


def service_linked_roles(spec: Spec) -> list[ServiceLinkedRole]:
    """The roles the spec's services need: ECS's, and scaling's if one autoscales."""
    scaled = any(s.autoscaling is not None for s in spec.services.values())
    return [ECS_ROLE, *([ECS_SCALING_ROLE] if scaled else [])]


def ensure_service_linked_roles(iam: Any, roles: Iterable[ServiceLinkedRole]) -> list[str]:
    """Create the roles that are missing; returns the names of those created."""
    created = []
    for role in roles:
        try:
            iam.get_role(RoleName=role.role_name)
            continue
        except iam.exceptions.NoSuchEntityException:
            pass
        try:
            iam.create_service_linked_role(AWSServiceName=role.service)
        except iam.exceptions.InvalidInputException as err:
            # Another deploy made it in between: "has been taken in this account".
            if "has been taken" not in str(err):
                raise
            continue
        created.append(role.role_name)
    return created


def bootstrap_version(ssm: Any, qualifier: str = BOOTSTRAP_QUALIFIER) -> int | None:
    """The CDK bootstrap version of the client's account and region, None if absent."""
    try:
        answer = ssm.get_parameter(Name=f"/cdk-bootstrap/{qualifier}/version")
    except ssm.exceptions.ParameterNotFound:
        return None
    return int(answer["Parameter"]["Value"])


def needs_bootstrap(ssm: Any) -> bool:
    version = bootstrap_version(ssm)
    return version is None or version < MIN_BOOTSTRAP_VERSION
