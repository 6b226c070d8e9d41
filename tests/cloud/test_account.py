"""A fresh account's prerequisites against recorded AWS answers (botocore's Stubber checks
every request and answer against the services' own models; nothing leaves the machine:
the clients' endpoint is loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import Stubber
from tests.cloud.stubs import client

from fargo.cloud.account import (
    ECS_ROLE,
    ECS_SCALING_ROLE,
    AccessDeniedError,
    ensure_service_linked_roles,
    needs_bootstrap,
    service_linked_roles,
)
from fargo.spec import Spec

ROLE_ANSWER = {
    "Role": {
        "Path": "/aws-service-role/ecs.amazonaws.com/",
        "RoleName": "AWSServiceRoleForECS",
        "RoleId": "AROAEXAMPLEEXAMPLE123",
        "Arn": "arn:aws:iam::123456789012:role/aws-service-role/ecs.amazonaws.com/"
        "AWSServiceRoleForECS",
        "CreateDate": "2026-01-01T00:00:00Z",
    }
}


def stubbed(service: str) -> Iterator[tuple[Any, Stubber]]:
    stubbed_client = client(service)
    with Stubber(stubbed_client) as stub:
        yield stubbed_client, stub
        stub.assert_no_pending_responses()


@pytest.fixture
def iam() -> Iterator[tuple[Any, Stubber]]:
    yield from stubbed("iam")


@pytest.fixture
def ssm() -> Iterator[tuple[Any, Stubber]]:
    yield from stubbed("ssm")


def test_a_fresh_account_gets_both_service_linked_roles(iam: tuple[Any, Stubber]) -> None:
    client, stub = iam
    for role in (ECS_ROLE, ECS_SCALING_ROLE):
        stub.add_client_error(
            "get_role",
            "NoSuchEntity",
            f"The role with name {role.role_name} cannot be found.",
            404,
            expected_params={"RoleName": role.role_name},
        )
        stub.add_response(
            "create_service_linked_role",
            {"Role": {**ROLE_ANSWER["Role"], "RoleName": role.role_name}},
            expected_params={"AWSServiceName": role.service},
        )
    assert ensure_service_linked_roles(client, [ECS_ROLE, ECS_SCALING_ROLE]) == [
        "AWSServiceRoleForECS",
        "AWSServiceRoleForApplicationAutoScaling_ECSService",
    ]


def test_roles_that_exist_are_left_alone(iam: tuple[Any, Stubber]) -> None:
    client, stub = iam
    stub.add_response("get_role", ROLE_ANSWER, expected_params={"RoleName": ECS_ROLE.role_name})
    assert ensure_service_linked_roles(client, [ECS_ROLE]) == []


def test_a_role_made_meanwhile_by_another_deploy_is_no_error(iam: tuple[Any, Stubber]) -> None:
    client, stub = iam
    stub.add_client_error("get_role", "NoSuchEntity", "cannot be found", 404)
    stub.add_client_error(
        "create_service_linked_role",
        "InvalidInput",
        "Service role name AWSServiceRoleForECS has been taken in this account, please try "
        "a different suffix.",
        400,
    )
    assert ensure_service_linked_roles(client, [ECS_ROLE]) == []


DENIED = "User: arn:aws:sts::123456789012:assumed-role/ci/x is not authorized to perform: {}"


def test_a_denied_role_creation_names_the_action_and_the_role(iam: tuple[Any, Stubber]) -> None:
    client, stub = iam
    stub.add_client_error("get_role", "NoSuchEntity", "cannot be found", 404)
    stub.add_client_error(
        "create_service_linked_role",
        "AccessDenied",
        DENIED.format("iam:CreateServiceLinkedRole"),
        403,
        expected_params={"AWSServiceName": "ecs.amazonaws.com"},
    )
    with pytest.raises(AccessDeniedError) as caught:
        ensure_service_linked_roles(client, [ECS_ROLE])
    assert str(caught.value).startswith(
        "AWS denied iam:CreateServiceLinkedRole on the role AWSServiceRoleForECS (service "
        "ecs.amazonaws.com) (AccessDenied): the deploying identity needs the IAM permission "
        "iam:CreateServiceLinkedRole on it. Grant it"
    )


def test_a_denied_role_lookup_names_iam_get_role(iam: tuple[Any, Stubber]) -> None:
    client, stub = iam
    stub.add_client_error("get_role", "AccessDenied", DENIED.format("iam:GetRole"), 403)
    with pytest.raises(AccessDeniedError) as caught:
        ensure_service_linked_roles(client, [ECS_ROLE])
    assert (caught.value.action, caught.value.resource) == (
        "iam:GetRole",
        "the role AWSServiceRoleForECS",
    )


@pytest.mark.parametrize("code", ["AccessDeniedException", "UnauthorizedOperation"])
def test_a_denied_bootstrap_version_read_names_the_parameter(
    ssm: tuple[Any, Stubber], code: str
) -> None:
    client, stub = ssm
    stub.add_client_error("get_parameter", code, DENIED.format("ssm:GetParameter"), 400)
    with pytest.raises(AccessDeniedError) as caught:
        needs_bootstrap(client)
    assert str(caught.value).startswith(
        "AWS denied ssm:GetParameter on the SSM parameter /cdk-bootstrap/hnb659fds/version "
        f"({code}): the deploying identity needs the IAM permission ssm:GetParameter on it."
    )


def test_other_errors_are_not_reported_as_denials(ssm: tuple[Any, Stubber]) -> None:
    client, stub = ssm
    stub.add_client_error("get_parameter", "ThrottlingException", "Rate exceeded", 400)
    with pytest.raises(client.exceptions.ClientError, match="ThrottlingException"):
        needs_bootstrap(client)


def test_only_a_scaled_service_needs_the_scaling_role(reference_spec: Spec) -> None:
    assert service_linked_roles(reference_spec) == [ECS_ROLE, ECS_SCALING_ROLE]
    fixed = reference_spec.model_copy(deep=True)
    for service in fixed.services.values():
        service.autoscaling = None
    assert service_linked_roles(fixed) == [ECS_ROLE]


@pytest.mark.parametrize(("version", "needed"), [(None, True), ("5", True), ("21", False)])
def test_bootstrap_runs_only_when_missing_or_too_old(
    ssm: tuple[Any, Stubber], version: str | None, needed: bool
) -> None:
    client, stub = ssm
    name = "/cdk-bootstrap/hnb659fds/version"
    if version is None:
        stub.add_client_error("get_parameter", "ParameterNotFound", "", 400, {"Name": name})
    else:
        answer = {"Parameter": {"Name": name, "Type": "String", "Value": version, "Version": 1}}
        stub.add_response("get_parameter", answer, expected_params={"Name": name})
    assert needs_bootstrap(client) is needed
