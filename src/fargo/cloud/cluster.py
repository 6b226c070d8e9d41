"""The ECS cluster, with Container Insights as the spec says, and the Fargate and
Fargate Spot capacity providers when a service runs tasks on Spot."""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from constructs import Construct

from fargo.cloud import acknowledgements as ack
from fargo.spec.model import Cluster as ClusterSpec


class Cluster(Construct):
    """Children: ``cluster``, ``capacity_providers`` (or None)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        cluster: ClusterSpec,
        vpc: ec2.IVpc,
        fargate_spot: bool = False,
    ) -> None:
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
        if not cluster.container_insights:
            ack.cluster_without_container_insights(self.cluster)
        # The cluster's Fargate and Fargate Spot providers (None without Spot); made here,
        # not by the CDK, so the services that use them can depend on them.
        self.capacity_providers = (
            ecs.CfnClusterCapacityProviderAssociations(
                self,
                "CapacityProviders",
                cluster=self.cluster.cluster_name,
                capacity_providers=["FARGATE", "FARGATE_SPOT"],
                default_capacity_provider_strategy=[],
            )
            if fargate_spot
            else None
        )
