"""`synthesize`: a cloud assembly with three stacks, offline, deterministic, no Docker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fargo.cloud.synth import SynthResult, synthesize
from fargo.spec import Spec

REFERENCE = Path(__file__).resolve().parents[2] / "fargo.yaml"


def test_three_stacks_in_deploy_order(reference: SynthResult) -> None:
    assert reference.stack_names() == [
        "fargo-demo-network",
        "fargo-demo-registry",
        "fargo-demo-app",
    ]
    for path in reference.templates.values():
        assert path.is_file() and path.parent == reference.outdir


def test_assembly_manifest_orders_the_stacks(reference: SynthResult) -> None:
    manifest = json.loads((reference.outdir / "manifest.json").read_text())
    app = manifest["artifacts"]["fargo-demo-app"]
    assert app["environment"] == "aws://unknown-account/us-east-1"
    assert {"fargo-demo-network", "fargo-demo-registry"} <= set(app["dependencies"])


def test_no_docker_assets(reference: SynthResult) -> None:
    for stack in reference.stack_names():
        assets = json.loads((reference.outdir / f"{stack}.assets.json").read_text())
        assert assets.get("dockerImages", {}) == {}


def test_every_resource_is_tagged_with_the_system(reference: SynthResult) -> None:
    untaggable = {
        "AWS::IAM::Policy",
        "AWS::EC2::SecurityGroupIngress",
        "AWS::EC2::SecurityGroupEgress",
        "AWS::EC2::SubnetRouteTableAssociation",
        "AWS::EC2::Route",
        "AWS::EC2::VPCGatewayAttachment",
        "AWS::S3::BucketPolicy",
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        "AWS::Route53::RecordSet",
        "Custom::VpcRestrictDefaultSG",  # a custom resource: its properties go to the handler
        "AWS::ECS::ClusterCapacityProviderAssociations",
    }
    for stack in reference.stack_names():
        for logical_id, resource in reference.template(stack)["Resources"].items():
            if resource["Type"] in untaggable:
                continue
            tags = resource["Properties"].get("Tags", [])
            if isinstance(tags, dict):  # AWS::SSM::Parameter takes a map
                tags = [{"Key": key, "Value": value} for key, value in tags.items()]
            assert {"Key": "fargo:system", "Value": "fargo-demo"} in tags, logical_id


def test_synthesis_is_deterministic(
    reference_spec: Spec, reference: SynthResult, tmp_path: Path
) -> None:
    again = synthesize(reference_spec, tmp_path, image_tags=reference.image_tags)
    for stack in reference.stack_names():
        assert again.template(stack) == reference.template(stack)


def test_image_tag_must_be_a_docker_tag(reference_spec: Spec, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a valid Docker tag"):
        synthesize(reference_spec, tmp_path, image_tags="no spaces")


@pytest.mark.slow  # a synth in a fresh interpreter
def test_synthesizes_with_no_aws_credentials_and_no_node_on_path(tmp_path: Path) -> None:
    """A fresh machine: nothing but the Python environment (Node comes from its wheel)."""
    env = {
        "PATH": str(tmp_path / "empty-bin"),  # no node, no docker, no aws CLI
        "HOME": os.environ.get("HOME", str(tmp_path)),  # jsii's package cache, not credentials
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    code = (
        "from pathlib import Path; from fargo.spec import load_spec; "
        "from fargo.cloud.synth import synthesize; "
        f"r = synthesize(load_spec({str(REFERENCE)!r}), Path({str(tmp_path / 'out')!r}), "
        "image_tags='t1'); "
        "print(len(r.templates), len(r.nag_findings))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["3", "0"]
