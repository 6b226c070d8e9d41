"""Listener rules between the spec and ELBv2's shapes: every condition and action type
goes to AWS's shape and back unchanged, and what the twin cannot take is a located error."""

from __future__ import annotations

import pytest

from fargo.local.aws_api import arns
from fargo.local.aws_api.elbv2_rules import (
    aws_actions,
    aws_conditions,
    spec_action,
    spec_conditions,
)
from fargo.local.aws_api.errors import AwsError
from fargo.spec.elb import Action, RuleCondition

REGION = "eu-west-1"
GROUPS = {arns.target_group(REGION, name): name for name in ("a", "b")}

CONDITIONS = [
    {"path_pattern": ["/a/*", "/b"]},
    {"host_header": ["admin.example.test"]},
    {"http_header": {"name": "X-Canary", "values": ["on"]}},
    {"http_request_method": ["GET", "HEAD"]},
    {"query_string": [{"key": "v", "value": "2"}, {"value": "plain"}]},
    {"source_ip": ["10.0.0.0/8"]},
]
ACTIONS = [
    {"forward": "a"},
    {"forward": {"target_groups": [{"target_group": "a", "weight": 1},
                                   {"target_group": "b", "weight": 3}]}},
    {"redirect": {"protocol": "HTTPS", "port": "443", "status_code": "HTTP_302"}},
    {"fixed_response": {"status_code": 418, "content_type": "application/json",
                        "message_body": "{}"}},
]  # fmt: skip


@pytest.mark.parametrize("condition", CONDITIONS, ids=lambda c: next(iter(c)))
def test_a_condition_goes_to_aws_and_back(condition: dict[str, object]) -> None:
    spec = [RuleCondition.model_validate(condition)]
    assert spec_conditions(aws_conditions(spec)) == spec


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: next(iter(a)))
def test_an_action_goes_to_aws_and_back(action: dict[str, object]) -> None:
    spec = Action.model_validate(action)
    assert spec_action(aws_actions(spec, REGION), GROUPS) == spec


def test_a_forward_to_an_unknown_target_group_is_target_group_not_found() -> None:
    with pytest.raises(AwsError) as raised:
        spec_action([{"Type": "forward", "TargetGroupArn": "arn:nope"}], GROUPS)
    assert raised.value.code == "TargetGroupNotFound"


def test_a_bad_fixed_response_names_the_action_and_the_problem() -> None:
    with pytest.raises(AwsError) as raised:
        spec_action([{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "302"}}],
                     GROUPS)  # fmt: skip
    assert raised.value.code == "ValidationError"
    assert "fixed-response" in raised.value.message and "redirect" in raised.value.message


def test_an_unsupported_condition_field_is_named() -> None:
    with pytest.raises(AwsError, match="'nope'"):
        spec_conditions([{"Field": "nope", "Values": ["x"]}])
