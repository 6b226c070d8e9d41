"""How tasks in the private subnets reach AWS: the one place that decides whether they can.

Before its container starts, a Fargate task pulls the image from ECR (the layers come
from S3) and opens its log stream in CloudWatch Logs, over the network of its subnet.
Every service runs in the private subnets, which reach AWS through a NAT gateway; a
later ``network.vpc_endpoints`` field will let interface and gateway endpoints stand in
for it, and lift the refusal of ``nat_gateways: 0`` here, nowhere else.
"""

from __future__ import annotations

from typing import Final

from fargo.spec.model import Network

# What a task in a private subnet must reach to start, in the words of the AWS services.
TASK_LAUNCH_NEEDS: Final = (
    "ECR (the image manifest)",
    "S3 (the image layers)",
    "CloudWatch Logs (the awslogs driver)",
)


def unreachable_from_private_subnets(network: Network) -> tuple[str, ...]:
    """What a task in a private subnet of ``network`` cannot reach (empty: it reaches all)."""
    if network.nat_gateways > 0:
        return ()
    return TASK_LAUNCH_NEEDS
