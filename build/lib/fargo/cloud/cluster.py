"""The ECS cluster, with Container Insights as the spec says."""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from constructs import Construct

from fargo.spec.model import Cluster as ClusterSpec


class Cluster(Construct):
    """Children: ``cluster``."""

    def __init__(self, scope: Construct, id: str, *, cluster: ClusterSpec, vpc: ec2.IVpc) -> None:
        super().__init__(scope, id)
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=vpc,
            cluster_name=cluster.name,
            container_insights_v2=ecs.ContainerInsights.ENABLED
            if cluster.container_insights
            else ecs.ContainerInsights.DISABLED,
        )
