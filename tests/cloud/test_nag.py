"""cdk-nag's AwsSolutions pack: no unacknowledged finding; acknowledgements carry reasons."""

from __future__ import annotations

from pathlib import Path

import pytest

from fargo.cloud import acknowledgements
from fargo.cloud.synth import SynthResult, synthesize
from fargo.spec import Spec
from fargo.spec.secrets import LocalSecret, Secret


def test_reference_has_no_unacknowledged_nag_finding(reference: SynthResult) -> None:
    assert [f.render() for f in reference.nag_findings] == []


def test_second_spec_has_no_unacknowledged_nag_finding(shop: SynthResult) -> None:
    assert [f.render() for f in shop.nag_findings] == []


def test_no_nat_gateway_spec_has_no_unacknowledged_nag_finding(endpoints: SynthResult) -> None:
    assert [f.render() for f in endpoints.nag_findings] == []
    rules = {a.rule for a in endpoints.nag_acknowledged}
    assert {
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
        "AWSLambdaBasicExecutionRole]",
        "AwsSolutions-IAM5[Resource::*]",
    } <= rules


def test_nag_ran_and_its_acknowledgements_have_reasons(reference: SynthResult) -> None:
    rules = {a.rule for a in reference.nag_acknowledged}
    assert {"AwsSolutions-EC23", "AwsSolutions-S1", "AwsSolutions-ECS2"} <= rules
    reasons = {a.reason for a in acknowledgements.ACKNOWLEDGEMENTS}
    for acknowledged in reference.nag_acknowledged:
        assert acknowledged.reason in reasons


def test_container_insights_off_is_acknowledged_as_a_cost_trade_off(
    reference: SynthResult,
) -> None:
    assert reference.nag_findings == []
    (off,) = [a for a in reference.nag_acknowledged if a.rule == "AwsSolutions-ECS4"]
    assert off.reason == acknowledgements.CONTAINER_INSIGHTS_OFF.reason
    assert "cost trade-off" in off.reason


def test_container_insights_on_needs_no_acknowledgement(
    reference_spec: Spec, tmp_path: Path
) -> None:
    spec = reference_spec.model_copy(deep=True)
    spec.cluster.container_insights = True
    result = synthesize(spec, tmp_path, image_tags="t1")
    assert result.nag_findings == []
    assert "AwsSolutions-ECS4" not in {a.rule for a in result.nag_acknowledged}


def test_an_unacknowledged_violation_is_reported(
    reference_spec: Spec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(acknowledgements, "access_log_bucket", lambda bucket: None)
    result = synthesize(reference_spec, tmp_path, image_tags="t1")
    assert "AwsSolutions-S1" in {f.rule for f in result.nag_findings}


def test_a_service_with_a_secret_looking_value_gets_the_environment_finding(
    reference_spec: Spec, tmp_path: Path
) -> None:
    spec = reference_spec.model_copy(deep=True)
    spec.services["backend-public"].environment["DB_PASSWORD"] = "hunter2"
    # A secrets: section does not make up for a secret left in the environment.
    spec.services["backend-public"].secrets["API_TOKEN"] = Secret(
        ssm_parameter="/fargo-demo/api-token", local=LocalSecret(env="FARGO_API_TOKEN")
    )
    result = synthesize(spec, tmp_path, image_tags="t1")
    findings = [(f.rule, f.resource) for f in result.nag_findings]
    assert findings == [("AwsSolutions-ECS2", "BackendPublicService/TaskDefinition/Resource")]
    assert "hunter2" not in str(result.nag_findings)
