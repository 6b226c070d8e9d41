"""ECR: one repository per image, scan on push, immutable tags, lifecycle, encryption."""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import assertions

from fargo.cloud.registry import Registry
from fargo.spec.model import Image


def test_one_repository_per_spec_image(registry_template: assertions.Template) -> None:
    registry_template.resource_count_is("AWS::ECR::Repository", 3)
    names = {
        r["Properties"]["RepositoryName"]
        for r in registry_template.find_resources("AWS::ECR::Repository").values()
    }
    assert names == {
        "fargo-demo/frontend",
        "fargo-demo/backend-public",
        "fargo-demo/backend-private",
    }


def test_images_are_scanned_on_push(registry_template: assertions.Template) -> None:
    for repository in registry_template.find_resources("AWS::ECR::Repository").values():
        assert repository["Properties"]["ImageScanningConfiguration"] == {"ScanOnPush": True}


def test_tags_are_immutable_and_images_encrypted(registry_template: assertions.Template) -> None:
    for repository in registry_template.find_resources("AWS::ECR::Repository").values():
        assert repository["Properties"]["ImageTagMutability"] == "IMMUTABLE"
        assert repository["Properties"]["EncryptionConfiguration"] == {"EncryptionType": "AES256"}


def test_lifecycle_rule_keeps_max_images(registry_template: assertions.Template) -> None:
    for repository in registry_template.find_resources("AWS::ECR::Repository").values():
        policy = json.loads(repository["Properties"]["LifecyclePolicy"]["LifecyclePolicyText"])
        (rule,) = policy["rules"]
        assert rule["selection"]["countType"] == "imageCountMoreThan"
        assert rule["selection"]["countNumber"] == 20
        assert rule["action"] == {"type": "expire"}


def test_repository_uris_are_stack_outputs(registry_template: assertions.Template) -> None:
    outputs = registry_template.find_outputs("*")
    assert {
        "FrontendRepositoryUri",
        "BackendPublicRepositoryUri",
        "BackendPrivateRepositoryUri",
    } <= set(outputs)


def test_repositories_follow_the_image_spec() -> None:
    stack = cdk.Stack()
    Registry(
        stack,
        "Registry",
        system="shop",
        images={
            "api": Image(
                dockerfile="api/Dockerfile",
                scan_on_push=False,
                tag_mutability="MUTABLE",
                max_images=5,
            )
        },
    )
    template = assertions.Template.from_stack(stack)
    (repository,) = template.find_resources("AWS::ECR::Repository").values()
    props = repository["Properties"]
    assert props["RepositoryName"] == "shop/api"
    assert props["ImageScanningConfiguration"] == {"ScanOnPush": False}
    assert props["ImageTagMutability"] == "MUTABLE"
    rule = json.loads(props["LifecyclePolicy"]["LifecyclePolicyText"])["rules"][0]
    assert rule["selection"]["countNumber"] == 5
