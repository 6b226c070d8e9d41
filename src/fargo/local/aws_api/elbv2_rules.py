"""Listener rules between the spec's models and ELBv2's shapes, both ways.

aws_conditions(rule.conditions)        # [{"Field": "path-pattern", "PathPatternConfig": ...}]
spec_conditions(params["Conditions"])  # [RuleCondition(path_pattern=[...])]
aws_actions(action, region); spec_action(params["Actions"], target_group_names)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from fargo.local.aws_api import arns
from fargo.local.aws_api.errors import AwsError
from fargo.spec.elb import (
    Action,
    FixedResponseAction,
    ForwardConfig,
    HttpHeaderCondition,
    QueryStringPair,
    RedirectAction,
    RuleCondition,
    WeightedTargetGroup,
)

# ELBv2 condition field → (the spec's field, the config's key in the API)
CONDITION_FIELDS = {
    "path-pattern": ("path_pattern", "PathPatternConfig"),
    "host-header": ("host_header", "HostHeaderConfig"),
    "http-request-method": ("http_request_method", "HttpRequestMethodConfig"),
    "source-ip": ("source_ip", "SourceIpConfig"),
}


def aws_conditions(conditions: Sequence[RuleCondition]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for condition in conditions:
        for field, (name, config) in CONDITION_FIELDS.items():
            values = getattr(condition, name)
            if values is not None:
                found.append({"Field": field, "Values": list(values), config: {"Values": values}})
        if condition.http_header is not None:
            header = condition.http_header
            found.append(
                {
                    "Field": "http-header",
                    "HttpHeaderConfig": {
                        "HttpHeaderName": header.name,
                        "Values": list(header.values),
                    },
                }
            )
        if condition.query_string is not None:
            pairs = [{"Key": p.key, "Value": p.value} for p in condition.query_string]
            found.append({"Field": "query-string", "QueryStringConfig": {"Values": pairs}})
    return found


def spec_conditions(conditions: Sequence[Mapping[str, Any]]) -> list[RuleCondition]:
    found = []
    for condition in conditions:
        field = condition.get("Field", "")
        try:
            if field in CONDITION_FIELDS:
                name, config = CONDITION_FIELDS[field]
                values = condition.get(config, {}).get("Values") or condition.get("Values")
                found.append(RuleCondition.model_validate({name: values}))
            elif field == "http-header":
                config = condition.get("HttpHeaderConfig", {})
                header = HttpHeaderCondition(
                    name=config.get("HttpHeaderName", ""), values=config.get("Values", [])
                )
                found.append(RuleCondition(http_header=header))
            elif field == "query-string":
                pairs = condition.get("QueryStringConfig", {}).get("Values", [])
                found.append(
                    RuleCondition(
                        query_string=[
                            QueryStringPair(key=p.get("Key"), value=p.get("Value", ""))
                            for p in pairs
                        ]
                    )
                )
            else:
                raise AwsError("ValidationError", f"condition field {field!r} is not supported")
        except PydanticValidationError as err:
            raise AwsError("ValidationError", f"condition {field}: {_first(err)}") from None
    return found


def aws_actions(action: Action, region: str) -> list[dict[str, Any]]:
    if action.forward is not None:
        groups = action.weighted_target_groups()
        config = {
            "TargetGroups": [
                {"TargetGroupArn": arns.target_group(region, g.target_group), "Weight": g.weight}
                for g in groups
            ]
        }
        single = {"TargetGroupArn": config["TargetGroups"][0]["TargetGroupArn"]}
        extra = single if len(groups) == 1 else {}
        return [{"Type": "forward", "Order": 1, **extra, "ForwardConfig": config}]
    if action.redirect is not None:
        r = action.redirect
        redirect: dict[str, Any] = {
            "Protocol": r.protocol,
            "Port": r.port,
            "Host": r.host,
            "Path": r.path,
            "Query": r.query,
            "StatusCode": r.status_code,
        }
        return [{"Type": "redirect", "Order": 1, "RedirectConfig": redirect}]
    fixed = action.fixed_response
    assert fixed is not None  # an Action has exactly one of the three
    response: dict[str, Any] = {
        "StatusCode": str(fixed.status_code),
        "ContentType": fixed.content_type,
        "MessageBody": fixed.message_body,
    }
    return [{"Type": "fixed-response", "Order": 1, "FixedResponseConfig": response}]


def spec_action(actions: Sequence[Mapping[str, Any]], target_groups: Mapping[str, str]) -> Action:
    """One action (the twin's rules have one); ``target_groups``: ARN → name."""
    if len(actions) != 1:
        raise AwsError("ValidationError", "the twin's rules take exactly one action")
    action = actions[0]
    kind = action.get("Type")
    try:
        if kind == "forward":
            weighted = action.get("ForwardConfig", {}).get("TargetGroups") or [
                {"TargetGroupArn": action.get("TargetGroupArn"), "Weight": 1}
            ]
            groups = [
                WeightedTargetGroup(
                    target_group=_group(g.get("TargetGroupArn"), target_groups),
                    weight=g.get("Weight", 1),
                )
                for g in weighted
            ]
            if len(groups) == 1 and groups[0].weight == 1:
                return Action(forward=groups[0].target_group)
            return Action(forward=ForwardConfig(target_groups=groups))
        if kind == "fixed-response":
            config = action.get("FixedResponseConfig", {})
            return Action(
                fixed_response=FixedResponseAction(
                    status_code=int(config.get("StatusCode", 0)),
                    content_type=config.get("ContentType", "text/plain"),
                    message_body=config.get("MessageBody", ""),
                )
            )
        if kind == "redirect":
            config = action.get("RedirectConfig", {})
            keys = {
                "Protocol": "protocol",
                "Port": "port",
                "Host": "host",
                "Path": "path",
                "Query": "query",
                "StatusCode": "status_code",
            }
            return Action(
                redirect=RedirectAction.model_validate(
                    {keys[k]: v for k, v in config.items() if k in keys}
                )
            )
    except (PydanticValidationError, ValueError) as err:
        raise AwsError("ValidationError", f"action {kind}: {_first(err)}") from None
    raise AwsError("ValidationError", f"action type {kind!r} is not supported by the twin")


def _group(target_group_arn: str | None, target_groups: Mapping[str, str]) -> str:
    if target_group_arn is None or target_group_arn not in target_groups:
        raise AwsError(
            "TargetGroupNotFound", f"One or more target groups not found: {target_group_arn}"
        )
    return target_groups[target_group_arn]


def _first(err: Exception) -> str:
    if isinstance(err, PydanticValidationError):
        first = err.errors()[0]
        return str(first.get("msg", err))
    return str(err)
