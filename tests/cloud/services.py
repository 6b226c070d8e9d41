"""One `FargateService` in a bare stack, as construct tests build it (the rest of the
stack — cluster, private subnets, repository — made with the usual test values)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs

from fargo.cloud.services import FargateService
from fargo.spec.model import Service


def fargate_service(
    stack: cdk.Stack,
    vpc: ec2.IVpc,
    service: Service,
    *,
    construct_id: str = "Api",
    environment: dict[str, str] | None = None,
    target_groups: Sequence[Any] = (),
) -> FargateService:
    """The service ``api`` (image ``shop/api:v1``, logs kept 14 days) in ``stack``."""
    extra: dict[str, Any] = {"target_groups": list(target_groups)} if target_groups else {}
    return FargateService(
        stack,
        construct_id,
        name="api",
        service=service,
        cluster=ecs.Cluster(stack, "Cluster", vpc=vpc),
        subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
        repository=ecr.Repository.from_repository_name(stack, "Repository", "shop/api"),
        image_tag="v1",
        environment=environment or {},
        log_retention_days=14,
        **extra,
    )
