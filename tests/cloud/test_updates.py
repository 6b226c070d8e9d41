"""The stacks stay updatable: nothing is passed through CloudFormation exports (an export
in use cannot change), and autoscaled services keep the count their scaling chose."""

from __future__ import annotations

import json

from fargo.cloud.synth import SynthResult

NETWORK_KEYS = {
    "vpc-id",
    "public-subnet-0",
    "public-subnet-1",
    "private-subnet-0",
    "private-subnet-1",
}


def test_no_stack_exports_and_the_app_stack_imports_nothing(reference: SynthResult) -> None:
    for stack in reference.stack_names():
        template = reference.template(stack)
        assert "Fn::ImportValue" not in json.dumps(template), stack
        assert all("Export" not in output for output in template.get("Outputs", {}).values())


def test_network_ids_go_through_ssm_parameters(reference: SynthResult) -> None:
    written = {
        r["Properties"]["Name"]: r["Properties"]["Value"]
        for r in reference.template("network")["Resources"].values()
        if r["Type"] == "AWS::SSM::Parameter"
    }
    prefix = "/fargo/fargo-demo/network/"
    assert {name.removeprefix(prefix) for name in written} == NETWORK_KEYS
    assert written[prefix + "vpc-id"] == {"Ref": "NetworkVpc7FB7348F"}
    assert all("Ref" in value for value in written.values())  # the live ids, not copies

    read = {
        p["Default"]
        for p in reference.template("app")["Parameters"].values()
        if p["Type"] == "AWS::SSM::Parameter::Value<String>" and p["Default"].startswith(prefix)
    }
    assert read == set(written)  # the app stack reads each at deploy time


def test_repositories_are_looked_up_by_name(reference: SynthResult) -> None:
    app = json.dumps(reference.template("app"))
    for image in ("frontend", "backend-public", "backend-private"):
        assert f"/fargo-demo/{image}:abc123" in app
    assert not any(
        r["Type"] == "AWS::ECR::Repository" for r in reference.template("app")["Resources"].values()
    )
