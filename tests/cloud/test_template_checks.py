"""cfn-lint and checkov on the synthesized templates: clean, except skips listed in code."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from fargo.cloud import acknowledgements
from fargo.cloud.checks import CheckReport, cfn_lint, checkov
from fargo.cloud.synth import SynthResult

pytestmark = pytest.mark.slow  # cfn-lint and checkov take seconds per template


def test_cfn_lint_finds_no_errors_or_warnings(reference: SynthResult, shop: SynthResult) -> None:
    assert [f.render() for f in cfn_lint(reference) + cfn_lint(shop)] == []


def test_cfn_lint_reports_a_broken_template(reference: SynthResult, tmp_path: Path) -> None:
    broken = json.loads(reference.templates["fargo-demo-registry"].read_text())
    for resource in broken["Resources"].values():
        resource["Properties"]["ImageTagMutability"] = "SOMETIMES"
    path = tmp_path / "broken.template.json"
    path.write_text(json.dumps(broken))
    findings = cfn_lint(replace(reference, templates={"broken": path}))
    assert findings and {f.tool for f in findings} == {"cfn-lint"}
    assert all(f.rule.startswith("E") for f in findings)


def test_checkov_passes_except_listed_skips(reference_checks: CheckReport) -> None:
    assert [f.render() for f in reference_checks.findings] == []
    assert reference_checks.ran == ["cdk-nag", "cfn-lint", "checkov"]


def test_checkov_passes_on_the_second_spec(shop_checks: CheckReport) -> None:
    assert [f.render() for f in shop_checks.findings] == []


def test_checkov_and_cfn_lint_pass_without_a_nat_gateway(endpoints_checks: CheckReport) -> None:
    """The VPC endpoints, the narrowed egress and the S3 prefix list lookup."""
    assert [f.render() for f in endpoints_checks.findings] == []
    assert endpoints_checks.ran == ["cdk-nag", "cfn-lint", "checkov"]


def test_every_checkov_skip_is_one_listed_in_code_with_its_reason(
    reference_checks: CheckReport, shop_checks: CheckReport, endpoints_checks: CheckReport
) -> None:
    listed = {(a.rule, a.reason) for a in acknowledgements.ACKNOWLEDGEMENTS if a.tool == "checkov"}
    everything = reference_checks.acknowledged + shop_checks.acknowledged
    skipped = [a for a in everything + endpoints_checks.acknowledged if a.tool == "checkov"]
    assert skipped
    for acknowledged in skipped:
        assert (acknowledged.rule, acknowledged.reason) in listed


def test_every_acknowledgement_in_code_is_needed(
    reference_checks: CheckReport, shop_checks: CheckReport, endpoints_checks: CheckReport
) -> None:
    """No stale acknowledgement: each one suppresses a real finding of one of the specs."""
    acknowledged = [
        *reference_checks.acknowledged,
        *shop_checks.acknowledged,
        *endpoints_checks.acknowledged,
    ]
    used = {a.rule.split("[")[0] for a in acknowledged}
    unused = [a.rule for a in acknowledgements.ACKNOWLEDGEMENTS if a.rule not in used]
    assert unused == []


def test_checkov_reports_a_failing_template(reference: SynthResult, tmp_path: Path) -> None:
    source = reference.templates["fargo-demo-registry"]
    template = json.loads(source.read_text())
    for resource in template["Resources"].values():
        resource["Properties"]["ImageScanningConfiguration"] = {"ScanOnPush": False}
    path = tmp_path / source.name
    path.write_text(json.dumps(template))
    failed, _ = checkov(replace(reference, templates={"fargo-demo-registry": path}))
    assert {f.rule for f in failed} == {"CKV_AWS_163"}
    assert {f.stack for f in failed} == {"fargo-demo-registry"}
