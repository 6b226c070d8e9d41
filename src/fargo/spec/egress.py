"""How tasks in the private subnets reach AWS: the one place that decides whether they can.

Before its container starts, a Fargate task pulls the image from ECR (the layers come
from S3) and opens its log stream in CloudWatch Logs, over the network of its subnet.
Every service runs in the private subnets, which reach AWS through a NAT gateway, or
through VPC endpoints (``network.vpc_endpoints``): an *interface* endpoint puts an
interface of the AWS service in each private subnet, and its private DNS name makes the
service's usual name resolve to it; a *gateway* endpoint (S3, DynamoDB) is a route in
the private subnets' route tables. With neither, a task cannot start.

    unreachable_from_private_subnets(spec.network)   # () when tasks reach all they need
    missing_for_launch(spec.network)                 # ("s3",): the endpoints still missing
"""

from __future__ import annotations

from typing import Final, Literal

from fargo.spec import defaults
from fargo.spec.model import Network

EndpointType = Literal["Interface", "Gateway"]

# AWS's gateway endpoints: S3 and DynamoDB are reached by route, not by an interface.
GATEWAY_ENDPOINTS: Final = frozenset({"s3", "dynamodb"})

# The services a spec may name (`fargo.spec.defaults.VPC_ENDPOINT_NAMES`).
KNOWN_ENDPOINTS: Final = defaults.VPC_ENDPOINT_NAMES

# What a task in a private subnet must reach to start (Fargate platform 1.4), each with the
# endpoint that stands in for the NAT gateway and why the task needs it.
TASK_LAUNCH_ENDPOINTS: Final = {
    "ecr.api": "ECR's API (the registry authorization token)",
    "ecr.dkr": "ECR's registry (the image manifest)",
    "s3": "S3 (the image layers: ECR keeps them in S3)",
    "logs": "CloudWatch Logs (the awslogs driver)",
}
# The same, as the AWS services (what a spec without NAT gateway nor endpoints misses).
TASK_LAUNCH_NEEDS: Final = (
    "ECR (the image manifest)",
    "S3 (the image layers)",
    "CloudWatch Logs (the awslogs driver)",
)


def endpoint_type(name: str) -> EndpointType:
    """``Gateway`` for S3 and DynamoDB, ``Interface`` for every other service."""
    return "Gateway" if name in GATEWAY_ENDPOINTS else "Interface"


def service_name(name: str, region: str) -> str:
    """The endpoint's service name: ``com.amazonaws.us-east-1.ecr.dkr``."""
    return f"com.amazonaws.{region}.{name}"


def interface_endpoints(network: Network) -> tuple[str, ...]:
    """The spec's interface endpoints, in its order."""
    return tuple(n for n in network.vpc_endpoints if endpoint_type(n) == "Interface")


def gateway_endpoints(network: Network) -> tuple[str, ...]:
    """The spec's gateway endpoints, in its order."""
    return tuple(n for n in network.vpc_endpoints if endpoint_type(n) == "Gateway")


def missing_for_launch(network: Network) -> tuple[str, ...]:
    """The endpoints a task still lacks to start (empty with a NAT gateway: it goes there)."""
    if network.nat_gateways > 0:
        return ()
    return tuple(name for name in TASK_LAUNCH_ENDPOINTS if name not in network.vpc_endpoints)


def unreachable_from_private_subnets(network: Network) -> tuple[str, ...]:
    """What a task in a private subnet of ``network`` cannot reach (empty: it reaches all)."""
    missing = missing_for_launch(network)
    if not missing:
        return ()
    if not network.vpc_endpoints:
        return TASK_LAUNCH_NEEDS
    return tuple(TASK_LAUNCH_ENDPOINTS[name] for name in missing)


def reaches_internet(network: Network) -> bool:
    """Whether a task's connections to public addresses (an internet-facing load balancer,
    an API outside AWS) leave the VPC: only through a NAT gateway."""
    return network.nat_gateways > 0
