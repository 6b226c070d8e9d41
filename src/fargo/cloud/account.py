"""What an AWS account needs before the first deploy, found or made by `fargo deploy`.

- ECS's service-linked role (and Application Auto Scaling's for ECS when a service
  scales): CloudFormation does not create them, and on a fresh account the first
  ``CreateService`` fails with "Unable to assume the service linked role";
- the CDK bootstrap stack: ``cdk bootstrap`` runs only when the environment's
  ``/cdk-bootstrap/<qualifier>/version`` parameter is missing or too old, so a CI role
  that deploys needs no rights to create IAM roles (docs/cloud.md lists what it needs).

Each function takes a boto3 client (or a stubbed one in the tests). A call the
deploying identity may not make raises `AccessDeniedError`: one line naming the action,
the resource and what to grant, instead of botocore's traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from fargo.spec.model import Spec

BOOTSTRAP_QUALIFIER = "hnb659fds"  # the CDK's default
# The oldest bootstrap stack the CDK's synthesized templates accept (their
# ``CheckBootstrapVersion`` rule).
MIN_BOOTSTRAP_VERSION = 6
# The error codes AWS answers a call the caller's policies do not allow with (IAM and SSM
# say AccessDenied / AccessDeniedException, EC2 UnauthorizedOperation).
ACCESS_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})

T = TypeVar("T")


class AccessDeniedError(Exception):
    """AWS refused a call for want of a permission; the message says which and what to do."""

    def __init__(self, action: str, resource: str, code: str) -> None:
        self.action = action
        self.resource = resource
        super().__init__(
            f"AWS denied {action} on {resource} ({code}): the deploying identity needs the "
            f"IAM permission {action} on it. Grant it to the deploy role or user (docs/cloud.md "
            "lists what `fargo deploy` needs), or deploy with credentials that have it."
        )


def denied_code(err: Exception) -> str | None:
    """The error code of botocore's ``ClientError`` when it is an access denial."""
    response = getattr(err, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    return code if code in ACCESS_DENIED_CODES else None


def call(action: str, resource: str, request: Callable[[], T]) -> T:
    """``request()``, an access denial raised as `AccessDeniedError`."""
    try:
        return request()
    except Exception as err:
        code = denied_code(err)
        if code is None:
            raise
        raise AccessDeniedError(action, resource, code) from None


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
        resource = f"the role {role.role_name}"
        try:
            call("iam:GetRole", resource, partial(iam.get_role, RoleName=role.role_name))
            continue
        except iam.exceptions.NoSuchEntityException:
            pass
        try:
            call(
                "iam:CreateServiceLinkedRole",
                f"{resource} (service {role.service})",
                partial(iam.create_service_linked_role, AWSServiceName=role.service),
            )
        except iam.exceptions.InvalidInputException as err:
            # Another deploy made it in between: "has been taken in this account".
            if "has been taken" not in str(err):
                raise
            continue
        created.append(role.role_name)
    return created


def bootstrap_version(ssm: Any, qualifier: str = BOOTSTRAP_QUALIFIER) -> int | None:
    """The CDK bootstrap version of the client's account and region, None if absent."""
    name = f"/cdk-bootstrap/{qualifier}/version"
    try:
        answer = call(
            "ssm:GetParameter", f"the SSM parameter {name}", lambda: ssm.get_parameter(Name=name)
        )
    except ssm.exceptions.ParameterNotFound:
        return None
    return int(answer["Parameter"]["Value"])


def needs_bootstrap(ssm: Any) -> bool:
    version = bootstrap_version(ssm)
    return version is None or version < MIN_BOOTSTRAP_VERSION
