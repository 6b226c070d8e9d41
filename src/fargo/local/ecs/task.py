"""An ECS task of the twin: its identity, lifecycle state and metadata document."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from fargo.local.ec2.network import NetworkInterface
from fargo.local.ecr.registry import ImageManifest

ACCOUNT = "000000000000"  # the twin's stand-in account id; never a real one


class TaskStatus(StrEnum):
    """ECS task lifecycle states: PROVISIONING while its ENI is attached and its image
    pulled, PENDING until its container listens, then RUNNING."""

    PROVISIONING = "PROVISIONING"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    DEACTIVATING = "DEACTIVATING"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"


class HealthStatus(StrEnum):
    UNKNOWN = "UNKNOWN"
    HEALTHY = "HEALTHY"
    UNHEALTHY = "UNHEALTHY"


def new_task_id() -> str:
    """32 hex digits, like a Fargate task id."""
    return secrets.token_hex(16)


METADATA_TOKEN_BYTES = 16  # 128 random bits: not guessable, as AWS's random suffix


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(eq=False)
class Task:
    id: str
    service: str
    cluster: str
    region: str
    family: str
    revision: int
    port: int
    cpu: int
    memory: int
    image: ImageManifest
    log_path: Path
    created_at: datetime = field(default_factory=now)
    eni: NetworkInterface | None = None  # attached while PROVISIONING
    root: Path | None = None  # the image as pulled: what the task runs from
    last_status: TaskStatus = TaskStatus.PROVISIONING
    desired_status: TaskStatus = TaskStatus.RUNNING
    health: HealthStatus = HealthStatus.UNKNOWN
    process: asyncio.subprocess.Process | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    pull_started_at: datetime | None = None  # its image pull (PullStartedAt, PullStoppedAt)
    pull_stopped_at: datetime | None = None
    exit_code: int | None = None
    stopped_reason: str | None = None
    group: str = ""  # ECS's task group: "service:<name>", or "family:<family>" (RunTask)
    started_by: str | None = None
    # The secret part of its metadata endpoint URI (AWS's `/v4/<id>-<random>`): knowing a
    # task's id is not enough to read its metadata. Never shown (repr, status, events).
    metadata_token: str = field(
        default_factory=lambda: secrets.token_hex(METADATA_TOKEN_BYTES), repr=False
    )
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    stopped: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def arn(self) -> str:
        return f"arn:aws:ecs:{self.region}:{ACCOUNT}:task/{self.cluster}/{self.id}"

    @property
    def ip(self) -> str:
        """The address the task listens at; only once its ENI is attached."""
        if self.eni is None:
            raise RuntimeError(f"task {self.id} has no network interface yet")
        return self.eni.ip

    @property
    def availability_zone(self) -> str | None:
        return f"{self.region}{'abcdef'[self.eni.zone]}" if self.eni else None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def metadata(self) -> dict[str, Any]:
        """The task metadata v4 ``/task`` document (fields AWS documents for Fargate)."""
        network: dict[str, Any] = {
            "NetworkMode": "awsvpc",
            "IPv4Addresses": [self.ip],
            "AttachmentIndex": 0,
            "IPv4SubnetCIDRBlock": str(self.eni.subnet if self.eni else ""),
            "PrivateDNSName": f"ip-{self.ip.replace('.', '-')}.ec2.internal",
        }
        if self.eni is not None:
            # The subnet's router is its first address, as in a VPC (e.g. 10.0.10.1/24).
            subnet = self.eni.subnet
            network["SubnetGatewayIpv4Address"] = f"{subnet.network_address + 1}/{subnet.prefixlen}"

        container: dict[str, Any] = {
            "DockerId": self.id,
            "Name": self.service,
            "DockerName": self.service,
            "Image": self.image.uri,
            "ImageID": f"sha256:{self.image.digest}",
            "Labels": {
                "com.amazonaws.ecs.cluster": self.cluster,
                "com.amazonaws.ecs.container-name": self.service,
                "com.amazonaws.ecs.task-arn": self.arn,
                "com.amazonaws.ecs.task-definition-family": self.family,
                "com.amazonaws.ecs.task-definition-version": str(self.revision),
            },
            "DesiredStatus": self.desired_status.value,
            "KnownStatus": self.last_status.value,
            "Limits": {"CPU": self.cpu / 1024, "Memory": self.memory},
            "CreatedAt": _iso(self.created_at),
            "StartedAt": _iso(self.started_at),
            "Type": "NORMAL",
            "ContainerARN": f"arn:aws:ecs:{self.region}:{ACCOUNT}:container/{self.cluster}/"
            f"{self.id}/{self.service}",
            "LogDriver": "awslogs",
            # The twin's log router writes the awslogs stream <prefix>/<container>/<task id>.
            "LogOptions": {
                "awslogs-create-group": "true",
                "awslogs-group": f"/ecs/{self.family}",
                "awslogs-region": self.region,
                "awslogs-stream": f"{self.service}/{self.service}/{self.id}",
            },
            "Networks": [network],
        }
        if self.exit_code is not None:
            container["ExitCode"] = self.exit_code
        if self.stopped_at is not None:
            container["FinishedAt"] = _iso(self.stopped_at)
        document: dict[str, Any] = {
            "Cluster": f"arn:aws:ecs:{self.region}:{ACCOUNT}:cluster/{self.cluster}",
            "TaskARN": self.arn,
            "Family": self.family,
            "Revision": str(self.revision),
            "DesiredStatus": self.desired_status.value,
            "KnownStatus": self.last_status.value,
            "Limits": {"CPU": self.cpu / 1024, "Memory": self.memory},
            "PullStartedAt": _iso(self.pull_started_at),
            "PullStoppedAt": _iso(self.pull_stopped_at),
            "AvailabilityZone": self.availability_zone,
            "LaunchType": "FARGATE",
            "ServiceName": self.service,
            "Containers": [container],
        }
        if self.stopped_at is not None:
            document["ExecutionStoppedAt"] = _iso(self.stopped_at)
        return {k: v for k, v in document.items() if v is not None}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z") if moment else None
