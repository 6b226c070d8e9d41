"""A service's secrets in the template (fargo.cloud.secrets): the container's ``Secrets`` with
``valueFrom``, the execution role allowed to read exactly those, and never a value."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from aws_cdk import aws_ec2 as ec2
from tests.cloud.services import fargate_service

from fargo.cloud.synth import SynthResult
from fargo.spec.model import Service

PARTITION = {"Ref": "AWS::Partition"}
REGION = {"Ref": "AWS::Region"}
ACCOUNT = {"Ref": "AWS::AccountId"}
KEY = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def by_name(resources: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in resources.items() if r["Type"] == kind}


def container(result: SynthResult, service: str) -> dict[str, Any]:
    resources = result.template("app")["Resources"]
    for resource in by_name(resources, "AWS::ECS::TaskDefinition").values():
        definition = resource["Properties"]["ContainerDefinitions"][0]  # then any sidecar
        if definition["Name"] == service:
            return dict(definition)
    raise AssertionError(f"no task definition for {service}")


def execution_statements(result: SynthResult, service: str) -> list[dict[str, Any]]:
    """The statements of ``service``'s execution role's policy."""
    resources = result.template("app")["Resources"]
    definition = next(
        r["Properties"]
        for r in by_name(resources, "AWS::ECS::TaskDefinition").values()
        if r["Properties"]["ContainerDefinitions"][0]["Name"] == service
    )
    role = definition["ExecutionRoleArn"]["Fn::GetAtt"][0]
    (policy,) = [
        p["Properties"]
        for p in by_name(resources, "AWS::IAM::Policy").values()
        if p["Properties"]["Roles"] == [{"Ref": role}]
    ]
    return list(policy["PolicyDocument"]["Statement"])


def secret_statements(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The statements about secrets (not ECR or logs)."""
    return [s for s in statements if not str(s["Action"]).startswith(("['ecr:", "ecr:", "['logs:"))]


def arn(service: str, resource: str) -> dict[str, Any]:
    """An ARN in the stack's own partition, region and account."""
    return {
        "Fn::Join": [
            "",
            ["arn:", PARTITION, f":{service}:", REGION, ":", ACCOUNT, f":{resource}"],
        ]
    }


def test_secrets_are_the_containers_secrets_with_value_from(shop: SynthResult) -> None:
    assert container(shop, "web")["Secrets"] == [
        {"Name": "SESSION_KEY", "ValueFrom": arn("ssm", "parameter/shop/session-key")}
    ]
    assert container(shop, "api-blue")["Secrets"] == [
        {
            "Name": "DB_PASSWORD",
            "ValueFrom": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:shop/db-AbCdEf"
            ":password::",
        },
        {"Name": "PAYMENT_TOKEN", "ValueFrom": arn("secretsmanager", "secret:shop/payment-token")},
        {
            "Name": "SIGNING_KEY",
            "ValueFrom": "arn:aws:ssm:eu-west-1:111122223333:parameter/shop/signing-key",
        },
    ]
    assert "Secrets" not in container(shop, "worker")
    # A secret is no plain environment value.
    names = {e["Name"] for e in container(shop, "api-blue").get("Environment", [])}
    assert not names & {"DB_PASSWORD", "PAYMENT_TOKEN", "SIGNING_KEY"}


def test_the_execution_role_reads_exactly_its_services_secrets(shop: SynthResult) -> None:
    assert secret_statements(execution_statements(shop, "web")) == [
        {
            "Action": "ssm:GetParameters",
            "Effect": "Allow",
            "Resource": arn("ssm", "parameter/shop/session-key"),
        }
    ]
    assert secret_statements(execution_statements(shop, "api-blue")) == [
        {
            "Action": "secretsmanager:GetSecretValue",
            "Effect": "Allow",
            "Resource": [
                # the complete ARN as it is, without ECS's JSON key selector
                "arn:aws:secretsmanager:eu-west-1:111122223333:secret:shop/db-AbCdEf",
                # a name: the six random characters Secrets Manager appends, and no more
                arn("secretsmanager", "secret:shop/payment-token-??????"),
            ],
        },
        {
            "Action": "ssm:GetParameters",
            "Effect": "Allow",
            "Resource": "arn:aws:ssm:eu-west-1:111122223333:parameter/shop/signing-key",
        },
        {
            "Action": "kms:Decrypt",
            "Condition": {
                "StringEquals": {
                    "kms:ViaService": [
                        "secretsmanager.eu-west-1.amazonaws.com",
                        "ssm.eu-west-1.amazonaws.com",
                    ]
                }
            },
            "Effect": "Allow",
            "Resource": KEY,
        },
    ]
    for service in ("api-green", "worker"):  # no secrets: no grant
        assert secret_statements(execution_statements(shop, service)) == []


def test_task_roles_get_no_secret(shop: SynthResult) -> None:
    resources = shop.template("app")["Resources"]
    task_roles = {
        r["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0]
        for r in by_name(resources, "AWS::ECS::TaskDefinition").values()
    }
    for policy in by_name(resources, "AWS::IAM::Policy").values():
        assert not {r["Ref"] for r in policy["Properties"]["Roles"]} & task_roles


def test_a_service_with_secrets_keeps_the_environment_acknowledgement(shop: SynthResult) -> None:
    acknowledged = {(a.rule, a.resource) for a in shop.nag_acknowledged}
    for service in ("WebService", "ApiBlueService"):
        assert ("AwsSolutions-ECS2", f"shop-app/{service}/TaskDefinition/Resource") in acknowledged


VALUE_FROM_ENV = "env-value-4f1c0e9b"
VALUE_FROM_FILE = "file-value-8d2a7c31"


def test_no_secret_value_reaches_the_template(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cloud never reads a local value, even when `fargo up` could."""
    monkeypatch.setenv("SHOP_DB_PASSWORD", VALUE_FROM_ENV)
    (tmp_path / "token").write_text(VALUE_FROM_FILE)
    service = Service.model_validate(
        {
            "image": "api",
            "port": 8000,
            "secrets": {
                "DB_PASSWORD": {
                    "ssm_parameter": "/shop/db",
                    "local": {"env": "SHOP_DB_PASSWORD"},
                },
                "API_TOKEN": {
                    "secrets_manager": "shop/token",
                    "local": {"file": str(tmp_path / "token")},
                },
            },
        }
    )
    stack = cdk.Stack()
    vpc = ec2.Vpc(stack, "Vpc")
    fargate_service(stack, vpc, service, environment={"MODE": "production"})

    template = assertions.Template.from_stack(stack)

    text = json.dumps(template.to_json())
    assert "DB_PASSWORD" in text and "API_TOKEN" in text  # the names are there
    assert VALUE_FROM_ENV not in text and VALUE_FROM_FILE not in text
    template.has_resource_properties(
        "AWS::ECS::TaskDefinition",
        {
            "ContainerDefinitions": [
                assertions.Match.object_like(
                    {
                        "Secrets": [
                            {"Name": "DB_PASSWORD", "ValueFrom": arn("ssm", "parameter/shop/db")},
                            {
                                "Name": "API_TOKEN",
                                "ValueFrom": arn("secretsmanager", "secret:shop/token"),
                            },
                        ]
                    }
                )
            ]
        },
    )
