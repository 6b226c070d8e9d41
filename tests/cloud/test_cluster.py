"""The ECS cluster: named from the spec, Container Insights as the spec says."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import assertions
from aws_cdk import aws_ec2 as ec2

from fargo.cloud.cluster import Cluster
from fargo.spec.model import Cluster as ClusterSpec


def test_the_reference_cluster_leaves_container_insights_off(
    app_template: assertions.Template,
) -> None:
    app_template.resource_count_is("AWS::ECS::Cluster", 1)
    app_template.has_resource_properties(
        "AWS::ECS::Cluster",
        {
            "ClusterName": "microservices",
            "ClusterSettings": [{"Name": "containerInsights", "Value": "disabled"}],
        },
    )


def test_container_insights_follow_the_spec() -> None:
    stack = cdk.Stack()
    vpc = ec2.Vpc(stack, "Vpc")
    Cluster(stack, "Cluster", cluster=ClusterSpec(name="c", container_insights=True), vpc=vpc)
    assertions.Template.from_stack(stack).has_resource_properties(
        "AWS::ECS::Cluster",
        {
            "ClusterName": "c",
            "ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}],
        },
    )
