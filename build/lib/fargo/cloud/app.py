"""The CDK app for a spec: three stacks, cdk-nag's AwsSolutions checks as a validation plugin."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from fargo.cloud import policy
from fargo.cloud.stacks import AppStack, NetworkStack, RegistryStack
from fargo.spec.model import Spec

# Docker's tag grammar.
IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class SystemStacks:
    network: NetworkStack
    registry: RegistryStack
    app: AppStack


def stack_name(spec: Spec, part: str) -> str:
    """``<system>-network``, ``<system>-registry``, ``<system>-app``."""
    return f"{spec.name}-{part}"


def build_app(
    spec: Spec, *, outdir: Path, image_tags: Mapping[str, str]
) -> tuple[cdk.App, SystemStacks]:
    """The app for ``spec``; nothing is synthesized until ``app.synth()``.

    Stacks are bound to the spec's region and no account: synth needs no credentials,
    and nothing in them looks anything up (Availability Zones are ``Fn::GetAZs``).
    """
    for image_tag in image_tags.values():
        if not IMAGE_TAG.match(image_tag):
            raise ValueError(f"image tag {image_tag!r} is not a valid Docker tag")
    app = cdk.App(
        outdir=str(outdir),
        analytics_reporting=False,
        # CDK's own template validation (a WASM engine) takes seconds to start on every
        # synth; the templates are linted by cfn-lint in `fargo.cloud.checks` instead.
        builtin_cloud_formation_validation=False,
    )
    env = cdk.Environment(region=spec.region)
    network = NetworkStack(app, stack_name(spec, policy.NETWORK_STACK), spec=spec, env=env)
    registry = RegistryStack(app, stack_name(spec, policy.REGISTRY_STACK), spec=spec, env=env)
    application = AppStack(
        app,
        stack_name(spec, policy.APP_STACK),
        spec=spec,
        env=env,
        image_tags=image_tags,
    )
    application.add_stack_dependency(network, "the app runs in the network's VPC")
    application.add_stack_dependency(
        registry, "images are pushed to the registry before the app runs"
    )
    cdk.Tags.of(app).add(policy.SYSTEM_TAG, spec.name)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app, SystemStacks(network=network, registry=registry, app=application)
