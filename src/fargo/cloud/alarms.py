"""Deployment alarms: a service behind a load balancer rolls back when its targets fail.

ECS watches these CloudWatch alarms during a deployment, next to the circuit breaker
(which only sees tasks that fail to start): a new revision that starts fine but answers
5xx, or whose targets fail the load balancer's health checks, is rolled back too.

- 5xx: the targets' 5xx answers (``HTTPCode_Target_5XX_Count``) in
  one of the service's target groups reach `policy.DEPLOYMENT_5XX_THRESHOLD` in a minute;
- unhealthy targets: a target group has an unhealthy target
  (``UnHealthyHostCount``) for `policy.DEPLOYMENT_UNHEALTHY_MINUTES` minutes running.
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from constructs import Construct

from fargo.cloud import policy


def deployment_alarms(
    scope: Construct,
    *,
    service: str,
    target_groups: Sequence[elbv2.IApplicationTargetGroup],
) -> list[cloudwatch.Alarm]:
    """The alarms for ``service``'s deployments, one pair per target group."""
    alarms = []
    minute = cdk.Duration.minutes(1)
    for index, group in enumerate(target_groups):
        suffix = f"-{index}" if len(target_groups) > 1 else ""
        errors = group.metrics.http_code_target(
            elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=minute, statistic="Sum"
        )
        alarms.append(
            cloudwatch.Alarm(
                scope,
                f"Target5xx{suffix}",
                alarm_description=f"{service}: its targets answer 5xx; a deployment rolls back",
                metric=errors,
                threshold=policy.DEPLOYMENT_5XX_THRESHOLD,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
        )
        unhealthy = group.metrics.unhealthy_host_count(period=minute, statistic="Maximum")
        alarms.append(
            cloudwatch.Alarm(
                scope,
                f"UnhealthyTargets{suffix}",
                alarm_description=f"{service}: a target fails its health checks; a deployment "
                "rolls back",
                metric=unhealthy,
                threshold=1,
                evaluation_periods=policy.DEPLOYMENT_UNHEALTHY_MINUTES,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
        )
    return alarms


def watch_deployments(service: ecs.FargateService, alarms: Sequence[cloudwatch.Alarm]) -> None:
    """ECS rolls a deployment back when one of ``alarms`` goes off during it."""
    if alarms:
        service.enable_deployment_alarms(
            [alarm.alarm_name for alarm in alarms],
            behavior=ecs.AlarmBehavior.ROLLBACK_ON_ALARM,
        )
