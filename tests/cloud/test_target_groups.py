"""Target groups: type ip, the spec's health checks and deregistration delay, spec names."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import assertions
from aws_cdk import aws_ec2 as ec2

from fargo.cloud.target_groups import TARGET_GROUP_TAG, TargetGroups
from fargo.spec import Spec


def test_three_ip_target_groups_on_the_container_ports(app_template: assertions.Template) -> None:
    groups = app_template.find_resources("AWS::ElasticLoadBalancingV2::TargetGroup")
    ports = {
        g["Metadata"]["fargo"]["target_group"]: g["Properties"]["Port"] for g in groups.values()
    }
    assert ports == {"frontend": 80, "backend-public": 8080, "backend-private-with-alb": 8090}
    assert {g["Properties"]["TargetType"] for g in groups.values()} == {"ip"}


def test_health_check_get_slash_expects_200(app_template: assertions.Template) -> None:
    for group in app_template.find_resources("AWS::ElasticLoadBalancingV2::TargetGroup").values():
        props = group["Properties"]
        assert props["HealthCheckPath"] == "/"
        assert props["HealthCheckProtocol"] == "HTTP"
        assert props["Matcher"] == {"HttpCode": "200"}
        assert (props["HealthCheckIntervalSeconds"], props["HealthCheckTimeoutSeconds"]) == (30, 5)
        assert (props["HealthyThresholdCount"], props["UnhealthyThresholdCount"]) == (5, 2)


def test_deregistration_delay_from_the_spec(app_template: assertions.Template) -> None:
    for group in app_template.find_resources("AWS::ElasticLoadBalancingV2::TargetGroup").values():
        attrs = {a["Key"]: a["Value"] for a in group["Properties"]["TargetGroupAttributes"]}
        assert attrs["deregistration_delay.timeout_seconds"] == "30"


def test_target_groups_carry_their_spec_name_as_tag(app_template: assertions.Template) -> None:
    for group in app_template.find_resources("AWS::ElasticLoadBalancingV2::TargetGroup").values():
        tags = {t["Key"]: t["Value"] for t in group["Properties"]["Tags"]}
        assert tags[TARGET_GROUP_TAG] == group["Metadata"]["fargo"]["target_group"]


def test_health_check_settings_follow_the_spec(shop_spec: Spec) -> None:
    stack = cdk.Stack()
    TargetGroups(stack, "TargetGroups", spec=shop_spec, vpc=ec2.Vpc(stack, "Vpc"))
    template = assertions.Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        {
            "Port": 3000,
            "HealthCheckPath": "/health",
            "HealthCheckIntervalSeconds": 10,
            "HealthCheckTimeoutSeconds": 5,
            "HealthyThresholdCount": 2,
            "UnhealthyThresholdCount": 3,
            "Matcher": {"HttpCode": "200-299"},
            "TargetGroupAttributes": assertions.Match.array_with(
                [{"Key": "deregistration_delay.timeout_seconds", "Value": "5"}]
            ),
        },
    )
