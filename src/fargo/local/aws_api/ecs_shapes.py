"""The twin's ECS objects in the ECS API's shapes: services, deployments, tasks, task
definitions (the answers of `fargo.local.aws_api.ecs`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fargo.local.aws_api import arns
from fargo.local.ecs.task import Task, TaskStatus

if TYPE_CHECKING:
    from fargo.local.ecr.registry import ImageManifest
    from fargo.local.ecs.cluster import ServiceScheduler
    from fargo.spec import Spec

# The service events the scheduler keeps start with the time of day, "12:34:56 (service x)".
EVENT_TIME_CHARS = 8


def image_digest(image: ImageManifest) -> str:
    """The image's digest as ECR gives it: its OCI manifest's (``sha256:…``)."""
    return image.manifest_digest or f"sha256:{image.digest}"


def log_group(spec: Spec, service: str) -> str:
    """The awslogs log group of a service's tasks."""
    return f"/ecs/{spec.name}/{service}"


def log_stream(service: str, task_id: str) -> str:
    """awslogs' stream name: ``<stream prefix>/<container name>/<task id>``."""
    return f"{service}/{service}/{task_id}"


def deployment_id(service: str, revision: int) -> str:
    return f"ecs-svc/{int(arns.stable_id(service, revision), 16) % 10**19:019d}"


def describe_service(
    spec: Spec, scheduler: ServiceScheduler, created: dict[tuple[str, int], datetime]
) -> dict[str, Any]:
    region, cluster = spec.region, spec.cluster.name
    service = scheduler.service
    active = scheduler.active()
    running = [t for t in active if t.last_status is TaskStatus.RUNNING]
    pending = [t for t in active if t.last_status in (TaskStatus.PROVISIONING, TaskStatus.PENDING)]
    revision = scheduler.revision

    def deployment(status: str, rev: int, tasks: list[Task], rollout: str) -> dict[str, Any]:
        moment = created.setdefault((scheduler.name, rev), datetime.now(UTC))
        return {
            "id": deployment_id(scheduler.name, rev),
            "status": status,
            "taskDefinition": arns.task_definition(region, scheduler.family, rev),
            "desiredCount": scheduler.desired_count if status == "PRIMARY" else 0,
            "pendingCount": len([t for t in tasks if t in pending]),
            "runningCount": len([t for t in tasks if t.last_status is TaskStatus.RUNNING]),
            "failedTasks": 0,
            "createdAt": moment,
            "updatedAt": moment,
            "launchType": "FARGATE",
            "platformVersion": "1.4.0",
            "rolloutState": rollout,
            "rolloutStateReason": f"ECS deployment {deployment_id(scheduler.name, rev)} {rollout}",
        }

    current = [t for t in active if t.revision == revision]
    if scheduler.deploying:
        # The previous deployment stays listed until the deployment ends, its tasks
        # draining included (the services-stable waiter waits for one deployment).
        older = [t for t in scheduler.tasks if t.revision != revision]
        previous = older[0].revision if older else max(1, revision - 1)
        deployments = [
            deployment("PRIMARY", revision, current, "IN_PROGRESS"),
            deployment("ACTIVE", previous, [t for t in older if t in active], "COMPLETED"),
        ]
    else:
        steady = len(running) == scheduler.desired_count
        deployments = [
            deployment("PRIMARY", revision, active, "COMPLETED" if steady else "IN_PROGRESS")
        ]
    return {
        "serviceArn": arns.service(region, cluster, scheduler.name),
        "serviceName": scheduler.name,
        "clusterArn": arns.cluster(region, cluster),
        "status": "DRAINING" if scheduler.stopping else "ACTIVE",
        "desiredCount": scheduler.desired_count,
        "runningCount": len(running),
        "pendingCount": len(pending),
        "launchType": "FARGATE",
        "platformVersion": "LATEST",
        "platformFamily": "Linux",
        "taskDefinition": arns.task_definition(region, scheduler.family, revision),
        "deploymentConfiguration": {
            "maximumPercent": service.max_percent,
            "minimumHealthyPercent": service.min_healthy_percent,
            "deploymentCircuitBreaker": {"enable": True, "rollback": True},
        },
        "deployments": deployments,
        "events": _events(scheduler),
        "loadBalancers": [
            {
                "targetGroupArn": arns.target_group(region, group),
                "containerName": scheduler.name,
                "containerPort": service.port,
            }
            for group in service.target_groups
        ],
        "createdAt": created.setdefault((scheduler.name, 0), datetime.now(UTC)),
        "schedulingStrategy": "REPLICA",
        "deploymentController": {"type": "ECS"},
        "enableECSManagedTags": False,
        "propagateTags": "NONE",
        "enableExecuteCommand": True,
        "healthCheckGracePeriodSeconds": 0,
    }


def _events(scheduler: ServiceScheduler) -> list[dict[str, Any]]:
    """The scheduler's events, newest first as ECS lists them."""
    today = datetime.now(UTC)
    events = []
    for line in reversed(scheduler.events):
        try:
            clock = datetime.strptime(line[:EVENT_TIME_CHARS], "%H:%M:%S").time()
        except ValueError:
            continue
        moment = datetime.combine(today.date(), clock, UTC)
        if moment > today:
            moment -= timedelta(days=1)
        events.append(
            {"id": arns.stable_id(line, length=32), "createdAt": moment, "message": line[9:]}
        )
    return events


def stop_code(task: Task) -> str | None:
    reason = task.stopped_reason or ""
    if task.stopped_reason is None:
        return None
    if reason.startswith("Essential container"):
        return "EssentialContainerExited"
    if reason.startswith("Task stopped by user") or reason.startswith("StopTask"):
        return "UserInitiated"
    if "Error" in reason.split(":")[0]:
        return "TaskFailedToStart"
    return "ServiceSchedulerInitiated"


def describe_task(spec: Spec, task: Task) -> dict[str, Any]:
    region = spec.region
    attachment_id = arns.stable_id("attachment", task.id, length=32)
    attachment_id = "-".join(
        (
            attachment_id[:8],
            attachment_id[8:12],
            attachment_id[12:16],
            attachment_id[16:20],
            attachment_id[20:],
        )
    )
    eni = task.eni
    details = []
    if eni is not None:
        details = [
            {"name": "subnetId", "value": f"subnet-{arns.stable_id(eni.subnet, length=17)}"},
            {"name": "networkInterfaceId", "value": eni.id},
            {"name": "privateIPv4Address", "value": eni.ip},
        ]
    container = {
        "containerArn": arns.arn(
            "ecs", region, f"container/{task.cluster}/{task.id}/{task.service}"
        ),
        "taskArn": task.arn,
        "name": task.service,
        "image": task.image.uri,
        "imageDigest": image_digest(task.image),
        "runtimeId": f"{task.id}-{task.pid or 0}",
        "lastStatus": task.last_status.value
        if task.last_status is not TaskStatus.PROVISIONING
        else "PENDING",
        "exitCode": task.exit_code,
        "reason": task.stopped_reason,
        "networkBindings": [],
        "networkInterfaces": [{"attachmentId": attachment_id, "privateIpv4Address": eni.ip}]
        if eni is not None
        else [],
        "healthStatus": task.health.value,
        "cpu": str(task.cpu),
        "memory": str(task.memory),
    }
    return {
        "taskArn": task.arn,
        "clusterArn": arns.cluster(region, task.cluster),
        "taskDefinitionArn": arns.task_definition(region, task.family, task.revision),
        "group": task.group or f"service:{task.service}",
        "startedBy": task.started_by
        if task.group.startswith("family:")
        else deployment_id(task.service, task.revision),
        "lastStatus": task.last_status.value,
        "desiredStatus": task.desired_status.value,
        "healthStatus": task.health.value,
        "launchType": "FARGATE",
        "platformVersion": "1.4.0",
        "platformFamily": "Linux",
        "cpu": str(task.cpu),
        "memory": str(task.memory),
        "availabilityZone": task.availability_zone,
        "connectivity": "CONNECTED" if eni is not None else None,
        "createdAt": task.created_at,
        "pullStartedAt": task.created_at,
        "startedAt": task.started_at,
        "stoppingAt": task.stopped_at,
        "stoppedAt": task.stopped_at if task.last_status is TaskStatus.STOPPED else None,
        "stoppedReason": task.stopped_reason,
        "stopCode": stop_code(task),
        "attachments": [
            {
                "id": attachment_id,
                "type": "ElasticNetworkInterface",
                "status": "ATTACHED" if eni is not None else "PRECREATED",
                "details": details,
            }
        ],
        "containers": [container],
        "version": 1,
        "tags": [],
    }


def describe_task_definition(
    spec: Spec, scheduler: ServiceScheduler, revision: int
) -> dict[str, Any]:
    region = spec.region
    service = scheduler.service
    image = scheduler.image.uri if scheduler.image else f"local/{service.image}:latest"
    container: dict[str, Any] = {
        "name": scheduler.name,
        "image": image,
        "cpu": service.cpu,
        "memory": service.memory,
        "essential": True,
        "portMappings": [
            {"containerPort": service.port, "hostPort": service.port, "protocol": "tcp"}
        ],
        "environment": [{"name": k, "value": v} for k, v in sorted(service.environment.items())],
        "stopTimeout": service.stop_timeout,
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": log_group(spec, scheduler.name),
                "awslogs-region": region,
                "awslogs-stream-prefix": scheduler.name,
            },
        },
    }
    return {
        "taskDefinitionArn": arns.task_definition(region, scheduler.family, revision),
        "family": scheduler.family,
        "revision": revision,
        "containerDefinitions": [container],
        "networkMode": "awsvpc",
        "status": "ACTIVE",
        "requiresCompatibilities": ["FARGATE"],
        "compatibilities": ["EC2", "FARGATE"],
        "cpu": str(service.cpu),
        "memory": str(service.memory),
        "runtimePlatform": {
            "cpuArchitecture": service.architecture,
            "operatingSystemFamily": "LINUX",
        },
    }
