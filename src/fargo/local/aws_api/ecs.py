"""ECS on the twin's cluster: clusters, services, tasks, task definitions; UpdateService
(desired count, a forced rolling deployment) and StopTask act on the running schedulers.

    api = EcsApi(runtime); api.operations()["ListServices"]({"cluster": "default"})
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fargo.local.aws_api import arns
from fargo.local.aws_api.ecs_shapes import describe_service, describe_task, describe_task_definition
from fargo.local.aws_api.errors import AwsError
from fargo.local.aws_api.paging import page
from fargo.local.aws_api.server import Handler
from fargo.local.ecs.task import Task, TaskStatus

if TYPE_CHECKING:
    from fargo.local.ecs.cluster import ServiceScheduler
    from fargo.local.runtime import Runtime

INVALID = "InvalidParameterException"
DEPLOYMENT_START_SECONDS = 5.0  # UpdateService answers once the deployment has begun


class EcsApi:
    service = "ecs"
    invalid_parameter = INVALID

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._created: dict[tuple[str, int], datetime] = {}
        self._deployments: set[asyncio.Task[Any]] = set()

    def operations(self) -> Mapping[str, Handler]:
        return {
            "ListClusters": self.list_clusters,
            "DescribeClusters": self.describe_clusters,
            "ListServices": self.list_services,
            "DescribeServices": self.describe_services,
            "ListTasks": self.list_tasks,
            "DescribeTasks": self.describe_tasks,
            "DescribeTaskDefinition": self.describe_task_definition,
            "ListTaskDefinitions": self.list_task_definitions,
            "UpdateService": self.update_service,
            "StopTask": self.stop_task,
            "RunTask": self.run_task,
        }

    # -- names ----------------------------------------------------------------------------

    @property
    def _cluster_name(self) -> str:
        return self.runtime.spec.cluster.name

    def _cluster_arn(self) -> str:
        return arns.cluster(self.runtime.spec.region, self._cluster_name)

    def _check_cluster(self, params: Mapping[str, Any]) -> None:
        """The request's cluster (name or ARN; ECS's ``default`` when none is given)."""
        given = params.get("cluster") or "default"
        if given not in (self._cluster_name, self._cluster_arn()):
            raise AwsError("ClusterNotFoundException", f"Cluster not found: {given}")

    def _scheduler(self, name_or_arn: str) -> ServiceScheduler:
        name = name_or_arn.rsplit("/", 1)[-1]
        scheduler = self.runtime.cluster.services.get(name)
        if scheduler is None:
            raise AwsError("ServiceNotFoundException", f"Service not found: {name_or_arn}")
        return scheduler

    # -- clusters --------------------------------------------------------------------------

    def list_clusters(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"clusterArns": [self._cluster_arn()]}

    def describe_clusters(self, params: dict[str, Any]) -> dict[str, Any]:
        wanted = params.get("clusters") or ["default"]
        clusters, failures = [], []
        for given in wanted:
            if given in (self._cluster_name, self._cluster_arn()):
                clusters.append(self._describe_cluster())
            else:
                failures.append({"arn": given, "reason": "MISSING"})
        return {"clusters": clusters, "failures": failures}

    def _describe_cluster(self) -> dict[str, Any]:
        schedulers = self.runtime.cluster.services.values()
        tasks = list(self.runtime.cluster.tasks())
        return {
            "clusterArn": self._cluster_arn(),
            "clusterName": self._cluster_name,
            "status": "ACTIVE",
            "activeServicesCount": len(schedulers),
            "runningTasksCount": len([t for t in tasks if t.last_status is TaskStatus.RUNNING]),
            "pendingTasksCount": len(
                [t for t in tasks if t.last_status in (TaskStatus.PROVISIONING, TaskStatus.PENDING)]
            ),
            "registeredContainerInstancesCount": 0,
            "capacityProviders": ["FARGATE", "FARGATE_SPOT"],
            "settings": [
                {
                    "name": "containerInsights",
                    "value": "enabled"
                    if self.runtime.spec.cluster.container_insights
                    else "disabled",
                }
            ],
        }

    # -- services --------------------------------------------------------------------------

    def list_services(self, params: dict[str, Any]) -> dict[str, Any]:
        self._check_cluster(params)
        region = self.runtime.spec.region
        names = [arns.service(region, self._cluster_name, n) for n in self.runtime.cluster.services]
        found, token = page(
            names, params.get("nextToken"), params.get("maxResults"), default=10, invalid=INVALID
        )
        return {"serviceArns": found, "nextToken": token}

    def describe_services(self, params: dict[str, Any]) -> dict[str, Any]:
        self._check_cluster(params)
        services, failures = [], []
        for given in params["services"]:
            try:
                scheduler = self._scheduler(given)
            except AwsError:
                failures.append({"arn": given, "reason": "MISSING"})
                continue
            services.append(describe_service(self.runtime.spec, scheduler, self._created))
        return {"services": services, "failures": failures}

    async def update_service(self, params: dict[str, Any]) -> dict[str, Any]:
        self._check_cluster(params)
        scheduler = self._scheduler(params["service"])
        current = (scheduler, scheduler.revision)
        if params.get("taskDefinition") and self._definition(params["taskDefinition"]) == current:
            params = {**params, "taskDefinition": None}  # the one it runs: no change
        unsupported = sorted(
            k
            for k in (
                "taskDefinition",
                "capacityProviderStrategy",
                "networkConfiguration",
                "loadBalancers",
                "serviceRegistries",
                "placementConstraints",
            )
            if params.get(k) is not None
        )
        if unsupported:
            raise AwsError(
                INVALID,
                f"the twin's UpdateService takes desiredCount and forceNewDeployment; "
                f"change {', '.join(unsupported)} in fargo.yaml",
            )
        if params.get("desiredCount") is not None:
            try:
                self.runtime.scale_service(scheduler.name, params["desiredCount"])
            except ValueError as err:
                raise AwsError(INVALID, str(err)) from None
        if params.get("forceNewDeployment"):
            revision = scheduler.revision
            deployment = asyncio.create_task(self.runtime.restart_service(scheduler.name))
            self._deployments.add(deployment)
            deployment.add_done_callback(self._deployments.discard)
            # Answer once the deployment has begun, so DescribeServices shows it (as ECS's).
            deadline = time.monotonic() + DEPLOYMENT_START_SECONDS
            while scheduler.revision == revision and not deployment.done():
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.01)
        return {"service": describe_service(self.runtime.spec, scheduler, self._created)}

    # -- tasks -----------------------------------------------------------------------------

    def _all_tasks(self) -> list[Task]:
        cluster = self.runtime.cluster
        return [*cluster.tasks(), *cluster.standalone.tasks, *reversed(cluster.stopped_tasks)]

    def list_tasks(self, params: dict[str, Any]) -> dict[str, Any]:
        self._check_cluster(params)
        wanted = params.get("desiredStatus", "RUNNING")
        tasks = [t for t in self._all_tasks() if t.desired_status.value == wanted]
        if params.get("serviceName"):
            name = self._scheduler(params["serviceName"]).name
            tasks = [t for t in tasks if t.service == name and not t.group.startswith("family:")]
        if params.get("family"):
            tasks = [t for t in tasks if t.family == params["family"]]
        if params.get("startedBy"):
            tasks = [t for t in tasks if t.started_by == params["startedBy"]]
        found, token = page(
            [t.arn for t in tasks],
            params.get("nextToken"),
            params.get("maxResults"),
            default=100,
            invalid=INVALID,
        )
        return {"taskArns": found, "nextToken": token}

    def _task(self, given: str) -> Task | None:
        task_id = given.rsplit("/", 1)[-1]
        return self.runtime.cluster.find_task(task_id)

    def describe_tasks(self, params: dict[str, Any]) -> dict[str, Any]:
        self._check_cluster(params)
        tasks, failures = [], []
        for given in params["tasks"]:
            task = self._task(given)
            if task is None:
                failures.append({"arn": given, "reason": "MISSING"})
            else:
                tasks.append(describe_task(self.runtime.spec, task))
        return {"tasks": tasks, "failures": failures}

    def stop_task(self, params: dict[str, Any]) -> dict[str, Any]:
        """StopTask: the task drains and stops; its service's scheduler starts another."""
        self._check_cluster(params)
        task = self._task(params["task"])
        if task is None:
            raise AwsError(INVALID, f"The referenced task was not found: {params['task']}")
        reason = params.get("reason") or "Task stopped by user"
        standalone = self.runtime.cluster.standalone
        if task in standalone.tasks:
            if task.desired_status is TaskStatus.RUNNING:
                standalone.stop_task(task, reason)
            return {"task": describe_task(self.runtime.spec, task)}
        scheduler = self.runtime.cluster.services.get(task.service)
        if scheduler is not None and task.desired_status is TaskStatus.RUNNING:
            scheduler.event(f"task {task.id} stopped by StopTask: {reason}")
            scheduler.supervisor.begin_stop(task, reason, drain=task.ready.is_set())
            scheduler.wake()
        return {"task": describe_task(self.runtime.spec, task)}

    async def run_task(self, params: dict[str, Any]) -> dict[str, Any]:
        """RunTask of a service's task definition (its current revision): standalone tasks,
        in no target group or Cloud Map service, that nothing replaces."""
        self._check_cluster(params)
        scheduler, revision = self._definition(params["taskDefinition"])
        if revision != scheduler.revision:
            raise AwsError(
                INVALID,
                f"the twin runs the current revision of {scheduler.family} "
                f"({scheduler.revision}); found revision {revision}",
            )
        overrides = params.get("overrides") or {}
        if any(overrides.get(k) for k in overrides):
            raise AwsError(INVALID, "the twin's RunTask takes no overrides")
        try:
            tasks = await self.runtime.cluster.standalone.run(
                scheduler.name, count=params.get("count") or 1, started_by=params.get("startedBy")
            )
        except ValueError as err:
            raise AwsError(INVALID, str(err)) from None
        return {"tasks": [describe_task(self.runtime.spec, t) for t in tasks], "failures": []}

    # -- task definitions ------------------------------------------------------------------

    def _definition(self, given: str) -> tuple[ServiceScheduler, int]:
        """``family``, ``family:revision`` or an ARN → the service and revision."""
        tail = given.rsplit("/", 1)[-1]
        family, _, revision = tail.partition(":")
        for scheduler in self.runtime.cluster.services.values():
            if scheduler.family == family:
                if not revision:
                    return scheduler, scheduler.revision
                if revision.isdigit() and 1 <= int(revision) <= scheduler.revision:
                    return scheduler, int(revision)
        raise AwsError("ClientException", f"Unable to describe task definition: {given}")

    def describe_task_definition(self, params: dict[str, Any]) -> dict[str, Any]:
        scheduler, revision = self._definition(params["taskDefinition"])
        return {"taskDefinition": describe_task_definition(self.runtime.spec, scheduler, revision)}

    def list_task_definitions(self, params: dict[str, Any]) -> dict[str, Any]:
        region = self.runtime.spec.region
        found = [
            arns.task_definition(region, s.family, revision)
            for s in self.runtime.cluster.services.values()
            if params.get("familyPrefix") in (None, s.family)
            or s.family.startswith(params.get("familyPrefix") or "")
            for revision in range(1, s.revision + 1)
        ]
        items, token = page(
            found, params.get("nextToken"), params.get("maxResults"), default=100, invalid=INVALID
        )
        return {"taskDefinitionArns": items, "nextToken": token}
