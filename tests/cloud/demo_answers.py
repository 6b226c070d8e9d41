"""AWS answers for the cloud demo, in the shapes botocore's models define (its Stubber
checks each against them), and a session whose clients only the Stubber answers."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.stub import Stubber

CLUSTER = "fargo-demo-Cluster"
ACCOUNT = "123456789012"
PULLED = datetime.datetime(2026, 12, 3, 4, 0, tzinfo=datetime.UTC)


def client(service: str) -> Any:
    return boto3.client(
        service,
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",  # never reached: the Stubber answers
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="example",
    )


@dataclass
class StubbedSession:
    """``session.client(name)``: one stubbed client per service, answers queued in order."""

    clients: dict[str, Any] = field(default_factory=dict)
    stubs: dict[str, Stubber] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = client(service)
            self.stubs[service] = Stubber(self.clients[service])
        return self.clients[service]

    def stub(self, service: str) -> Stubber:
        self.client(service)
        return self.stubs[service]


@contextmanager
def activated(session: StubbedSession) -> Iterator[StubbedSession]:
    with ExitStack() as stack:
        for stub in session.stubs.values():
            stack.enter_context(stub)
        yield session
        for stub in session.stubs.values():
            stub.assert_no_pending_responses()


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
