"""AWS WAF on a load balancer: the web ACL, its association and its log, checked clean,
and priced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fargo.cloud.checks import run_checks
from fargo.cloud.cost import bill
from fargo.cloud.synth import SynthResult, synthesize
from fargo.spec import Spec, SpecError, parse_spec
from fargo.spec.elb import Waf

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def guarded(reference_spec: Spec, tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    spec = reference_spec.model_copy(deep=True)
    spec.load_balancers["public"].waf = Waf()
    return synthesize(spec, tmp_path_factory.mktemp("waf"), image_tags="t1")


def of_type(result: SynthResult, kind: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: r for logical_id, r in result.template("app")["Resources"].items()
        if r["Type"] == kind
    }  # fmt: skip


def test_the_public_load_balancer_gets_a_web_acl_of_managed_rule_groups(
    guarded: SynthResult,
) -> None:
    (acl,) = of_type(guarded, "AWS::WAFv2::WebACL").values()
    props = acl["Properties"]
    assert props["Scope"] == "REGIONAL" and props["DefaultAction"] == {"Allow": {}}
    assert [r["Name"] for r in props["Rules"]] == [
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesAmazonIpReputationList",
    ]
    for rule in props["Rules"]:
        statement = rule["Statement"]["ManagedRuleGroupStatement"]
        assert statement == {"Name": rule["Name"], "VendorName": "AWS"}
        assert rule["OverrideAction"] == {"None": {}}  # the groups' own block actions apply
        assert rule["VisibilityConfig"]["CloudWatchMetricsEnabled"] is True

    (association,) = of_type(guarded, "AWS::WAFv2::WebACLAssociation").values()
    balancers = of_type(guarded, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    public = next(i for i, r in balancers.items() if r["Properties"]["Scheme"] == "internet-facing")
    assert association["Properties"]["ResourceArn"] == {"Ref": public}


def test_the_web_acl_logs_every_request_to_a_waf_log_group(guarded: SynthResult) -> None:
    (logging,) = of_type(guarded, "AWS::WAFv2::LoggingConfiguration").values()
    (destination,) = logging["Properties"]["LogDestinationConfigs"]
    assert ":log-group:aws-waf-logs-fargo-demo-app-public" in str(destination)
    groups = [
        r["Properties"]
        for r in of_type(guarded, "AWS::Logs::LogGroup").values()
        if r["Properties"].get("LogGroupName") == "aws-waf-logs-fargo-demo-app-public"
    ]
    assert [g["RetentionInDays"] for g in groups] == [30]


@pytest.mark.slow  # cfn-lint and checkov
def test_a_guarded_system_passes_every_check(guarded: SynthResult) -> None:
    assert guarded.nag_findings == []
    assert run_checks(guarded) == []


def test_the_bill_has_the_web_acl_its_rule_groups_and_requests(reference_spec: Spec) -> None:
    spec = reference_spec.model_copy(deep=True)
    spec.load_balancers["public"].waf = Waf()
    priced = bill(spec, requests_per_month=2_000_000)
    assert priced.amount("AWS WAF") == pytest.approx(5.0 + 3 * 1.0 + 2 * 0.60)
    assert bill(reference_spec).amount("AWS WAF") == 0


def test_an_unknown_rule_group_is_refused_with_the_known_ones() -> None:
    text = (
        (ROOT / "fargo.yaml")
        .read_text()
        .replace(
            "    scheme: internet-facing\n",
            "    scheme: internet-facing\n    waf: {managed_rule_groups: [AWSManagedRulesNope]}\n",
            1,
        )
    )
    with pytest.raises(SpecError) as raised:
        parse_spec(text)
    assert "managed_rule_groups" in str(raised.value)
    assert "AWSManagedRulesCommonRuleSet" in str(raised.value)
