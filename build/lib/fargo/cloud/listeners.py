"""Spec listener actions and rule conditions as ELBv2 ``ListenerAction``/``ListenerCondition``."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import aws_elasticloadbalancingv2 as elbv2

from fargo.spec.elb import Action, ForwardConfig, RuleCondition

TargetGroups = Mapping[str, elbv2.IApplicationTargetGroup]


def listener_action(action: Action, target_groups: TargetGroups) -> elbv2.ListenerAction:
    """The action as ELBv2 renders it: forward, weighted forward, redirect, fixed response."""
    if isinstance(action.forward, str):
        return elbv2.ListenerAction.forward([target_groups[action.forward]])
    if isinstance(action.forward, ForwardConfig):
        return elbv2.ListenerAction.weighted_forward(
            [
                elbv2.WeightedTargetGroup(
                    target_group=target_groups[weighted.target_group], weight=weighted.weight
                )
                for weighted in action.forward.target_groups
            ]
        )
    if action.redirect is not None:
        redirect = action.redirect
        return elbv2.ListenerAction.redirect(
            protocol=redirect.protocol,
            host=redirect.host,
            port=redirect.port,
            path=redirect.path,
            query=redirect.query,
            permanent=redirect.status_code == "HTTP_301",
        )
    fixed = action.fixed_response
    assert fixed is not None  # the spec allows exactly one action type
    return elbv2.ListenerAction.fixed_response(
        fixed.status_code,
        content_type=fixed.content_type,
        message_body=fixed.message_body or None,
    )


def listener_conditions(conditions: list[RuleCondition]) -> list[elbv2.ListenerCondition]:
    """Every condition of a rule (ANDed); the values inside one condition are ORed."""
    return [_condition(condition) for condition in conditions]


def _condition(condition: RuleCondition) -> elbv2.ListenerCondition:
    if condition.path_pattern is not None:
        return elbv2.ListenerCondition.path_patterns(condition.path_pattern)
    if condition.host_header is not None:
        return elbv2.ListenerCondition.host_headers(condition.host_header)
    if condition.http_header is not None:
        return elbv2.ListenerCondition.http_header(
            condition.http_header.name, condition.http_header.values
        )
    if condition.http_request_method is not None:
        return elbv2.ListenerCondition.http_request_methods(condition.http_request_method)
    if condition.query_string is not None:
        return elbv2.ListenerCondition.query_strings(
            [
                elbv2.QueryStringCondition(key=pair.key, value=pair.value)
                for pair in condition.query_string
            ]
        )
    assert condition.source_ip is not None  # the spec allows exactly one condition type
    return elbv2.ListenerCondition.source_ips(condition.source_ip)
