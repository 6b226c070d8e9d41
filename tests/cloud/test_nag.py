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


def test_nag_ran_and_its_acknowledgements_have_reasons(reference: SynthResult) -> None:
    rules = {a.rule for a in reference.nag_acknowledged}
    assert {"AwsSolutions-EC23", "AwsSolutions-S1", "AwsSolutions-ECS2"} <= rules
    reasons = {a.reason for a in acknowledgements.ACKNOWLEDGEMENTS}
    for acknowledged in reference.nag_acknowledged:
        assert acknowledged.reason in reasons


def test_a_spec_that_turns_container_insights_off_gets_a_finding(
    reference_spec: Spec, tmp_path: Path
) -> None:
    spec = reference_spec.model_copy(deep=True)
    spec.cluster.container_insights = False
    result = synthesize(spec, tmp_path, image_tags="t1")
    assert [(f.tool, f.rule, f.resource) for f in result.nag_findings] == [
        ("cdk-nag", "AwsSolutions-ECS4", "Cluster/Cluster/Resource")
    ]


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
