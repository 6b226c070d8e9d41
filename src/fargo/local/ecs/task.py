"""An ECS task of the twin: its identity, lifecycle state and metadata document."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from fargo.local.ec2.network import Placement
from fargo.local.ecr.registry import ImageManifest

ACCOUNT = "000000000000"  # the twin's stand-in account id; never a real one


class TaskStatus(StrEnum):
    """ECS task lifecycle states (a subset: the twin has no ENI attachment step)."""

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
    placement: Placement
    port: int
    cpu: int
    memory: int
    image: ImageManifest
    log_path: Path
    created_at: datetime = field(default_factory=now)
    last_status: TaskStatus = TaskStatus.PROVISIONING
    desired_status: TaskStatus = TaskStatus.RUNNING
    health: HealthStatus = HealthStatus.UNKNOWN
    process: asyncio.subprocess.Process | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    exit_code: int | None = None
    stopped_reason: str | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    stopped: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def arn(self) -> str:
        return f"arn:aws:ecs:{self.region}:{ACCOUNT}:task/{self.cluster}/{self.id}"

    @property
    def ip(self) -> str:
        return self.placement.ip

    @property
    def availability_zone(self) -> str:
        return f"{self.region}{'abcdef'[self.placement.zone]}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def metadata(self) -> dict[str, Any]:
        """The task metadata v4 ``/task`` document (fields AWS documents for Fargate)."""
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
            "Networks": [
                {
                    "NetworkMode": "awsvpc",
                    "IPv4Addresses": [self.ip],
                    "AttachmentIndex": 0,
                    "IPv4SubnetCIDRBlock": str(self.placement.subnet),
                    "PrivateDNSName": f"ip-{self.ip.replace('.', '-')}.ec2.internal",
                }
            ],
        }
        if self.exit_code is not None:
            container["ExitCode"] = self.exit_code
        return {
            "Cluster": f"arn:aws:ecs:{self.region}:{ACCOUNT}:cluster/{self.cluster}",
            "TaskARN": self.arn,
            "Family": self.family,
            "Revision": str(self.revision),
            "DesiredStatus": self.desired_status.value,
            "KnownStatus": self.last_status.value,
            "Limits": {"CPU": self.cpu / 1024, "Memory": self.memory},
            "PullStartedAt": _iso(self.created_at),
            "AvailabilityZone": self.availability_zone,
            "LaunchType": "FARGATE",
            "Containers": [container],
        }

    def describe(self) -> dict[str, Any]:
        """A row for ``fargo status``."""
        return {
            "id": self.id,
            "service": self.service,
            "address": f"{self.ip}:{self.port}",
            "availability_zone": self.availability_zone,
            "last_status": self.last_status.value,
            "health": self.health.value,
            "pid": self.pid,
            "started_at": _iso(self.started_at),
            "exit_code": self.exit_code,
            "stopped_reason": self.stopped_reason,
            "log": str(self.log_path),
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z") if moment else None
