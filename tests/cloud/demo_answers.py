"""AWS answers for the cloud demo, in the shapes botocore's models define (its Stubber
checks each against them): `tests.cloud.stubs` queues them."""

from __future__ import annotations

import datetime
from typing import Any

CLUSTER = "fargo-demo-Cluster"
ACCOUNT = "123456789012"
PULLED = datetime.datetime(2026, 12, 3, 4, 0, tzinfo=datetime.UTC)


def service_answer(name: str, desired: int, running: int) -> dict[str, Any]:
    return {
        "serviceName": name,
        "serviceArn": f"arn:aws:ecs:us-east-1:{ACCOUNT}:service/{CLUSTER}/{name}",
        "desiredCount": desired,
        "runningCount": running,
    }


def task_answer(
    task_id: str, service: str, *, subnet: str, eni: str, ip: str, pulled: bool = True
) -> dict[str, Any]:
    task: dict[str, Any] = {
        "taskArn": f"arn:aws:ecs:us-east-1:{ACCOUNT}:task/{CLUSTER}/{task_id}",
        "group": f"service:{service}",
        "lastStatus": "RUNNING",
        "attachments": [
            {
                "type": "ElasticNetworkInterface",
                "status": "ATTACHED",
                "details": [
                    {"name": "subnetId", "value": subnet},
                    {"name": "networkInterfaceId", "value": eni},
                    {"name": "privateIPv4Address", "value": ip},
                ],
            }
        ],
        "containers": [{"name": "app", "imageDigest": "sha256:" + "ab" * 32}],
        "pullStartedAt": PULLED,
    }
    if pulled:
        task["pullStoppedAt"] = PULLED + datetime.timedelta(seconds=4.2)
    return task


def route_tables_answer(routes: dict[str, dict[str, str]]) -> dict[str, Any]:
    """Subnet → its default route's target (``{"NatGatewayId": …}`` or ``{"GatewayId": …}``)."""
    return {
        "RouteTables": [
            {
                "RouteTableId": f"rtb-{index:08x}",
                "Associations": [{"SubnetId": subnet, "RouteTableId": f"rtb-{index:08x}"}],
                "Routes": [
                    {"DestinationCidrBlock": "10.0.0.0/16", "GatewayId": "local"},
                    {"DestinationCidrBlock": "0.0.0.0/0", **target},
                ],
            }
            for index, (subnet, target) in enumerate(routes.items())
        ]
    }


def nat_answer(nat_id: str, public_ip: str, state: str = "available") -> dict[str, Any]:
    return {
        "NatGateways": [
            {
                "NatGatewayId": nat_id,
                "State": state,
                "SubnetId": "subnet-public-a",
                "NatGatewayAddresses": [{"PublicIp": public_ip, "PrivateIp": "10.0.0.200"}],
            }
        ]
    }


def interfaces_answer(public_ips: dict[str, str | None]) -> dict[str, Any]:
    return {
        "NetworkInterfaces": [
            {"NetworkInterfaceId": eni, **({"Association": {"PublicIp": ip}} if ip else {})}
            for eni, ip in public_ips.items()
        ]
    }
