"""The twin's status as typed data: what ``GET /status`` serves and ``fargo status`` shows.

    status = runtime.describe()                      # a TwinStatus, each part built by its owner
    text = status.model_dump_json()                  # GET /status, `fargo status --json`
    status = TwinStatus.model_validate_json(text)    # the CLI's side, `fargo demo`, the tests
    status.service("backend-private").state          # ServiceState.FAILING
    json_schema()                                    # `fargo status --json-schema`, docs/status.md

One model serves the control plane, the CLI's views, the demo and the tests, so they
cannot drift apart. Field names follow AWS's own (ECS ``lastStatus``, ELBv2
``TargetHealth``, Cloud Map ``HealthStatus``), snake_cased; the state values are the
enums of the parts that own them (`fargo.local.ecs.task`, `fargo.local.elb.target_health`),
listener rules and actions the spec's own models.

The models are the wire format and nothing else: the parts that own the state build
them (`ServiceScheduler.describe`, `ElasticLoadBalancing.describe`, `Runtime.describe`).
A task's summary is built here (`TaskSummary.of`) because this module needs the ECS
lifecycle enums from `fargo.local.ecs.task`, which therefore cannot import it back.

``schema_version`` changes when a field is renamed or removed or changes its meaning;
adding a field does not change it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from fargo.local.cloudmap.route53 import InstanceHealthStatus, RoutingPolicy
from fargo.local.ecs.task import HealthStatus, Task, TaskStatus
from fargo.local.elb.target_health import TargetState
from fargo.local.pid_namespace import container_pid
from fargo.spec.elb import Action, HealthCheck, RuleCondition

SCHEMA_VERSION: Final = 1
JSON_SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"

__all__ = [
    "SCHEMA_VERSION",
    "DataPlaneState",
    "DataPlaneStatus",
    "DiscoveryInstance",
    "DiscoveryServiceStatus",
    "DiskStatus",
    "Endpoints",
    "ListenerRuleStatus",
    "ListenerStatus",
    "LoadBalancerStatus",
    "LoadBalancingStatus",
    "MetricDatapoint",
    "MetricStatus",
    "MetricsStatus",
    "Readiness",
    "RegisteredTarget",
    "ServiceState",
    "ServiceStatus",
    "TargetGroupStatus",
    "TaskSummary",
    "TwinStatus",
    "json_schema",
    "readiness_of",
    "service_state",
]


class StatusModel(BaseModel):
    """A part of the status: immutable, and strict about keys (a misspelt field is an error)."""

    # Every field is always in the JSON, so the schema of the output requires them all.
    model_config = ConfigDict(
        frozen=True, extra="forbid", json_schema_serialization_defaults_required=True
    )


# -- readiness and endpoints ------------------------------------------------------------------


class Readiness(StatusModel):
    """Whether every service has its desired count of tasks in service, or what is missing.

    ``GET /ready`` serves this alone; ``fargo up --detach`` waits on it.
    """

    ready: bool = Field(description="Every service has its desired count of tasks in service.")
    failure: str | None = Field(
        None,
        description="Why the twin will not become ready by itself (a service whose tasks keep "
        "failing at start, with the reason and the task's last log lines); null otherwise.",
    )
    waiting: list[str] = Field(
        default_factory=list,
        description="What readiness still waits for, one entry per service below its desired "
        "count, e.g. 'backend-private 0/2 healthy (FAILING; last stop: Essential container in "
        "task exited (exit code 1))'.",
    )


class Endpoints(StatusModel):
    """Where to reach the twin from this machine."""

    load_balancers: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Load balancer name → the URLs of its listeners, in the spec's order.",
    )
    load_balancer_dns_names: dict[str, str] = Field(
        default_factory=dict,
        description="Load balancer name → its DNS name (resolved by the discovery DNS server).",
    )
    discovery_dns_server: str = Field(
        description="host:port of the DNS server that answers for the Cloud Map namespace and "
        "the load balancers' names (UDP and TCP)."
    )
    discovery_dns_problem: str | None = Field(
        None,
        description="Why the discovery DNS server does not answer (its process ended and is "
        "being started again on the same address); null while it answers.",
    )
    ca_certificate: Path = Field(
        description="The local certificate authority's certificate: trust it to verify the "
        "HTTPS listeners."
    )
    aws_api: str | None = Field(
        None,
        description="The AWS-compatible endpoint (boto3, the AWS CLI: AWS_ENDPOINT_URL), e.g. "
        "'http://127.0.0.1:4566'; null until it has started (docs/aws-api.md).",
    )
    console: str | None = Field(
        None,
        description="The console's URL on 127.0.0.1: the read-only JSON API the demo page "
        "draws its dashboard from (docs/twin.md); null until it has started.",
    )


# -- ECS --------------------------------------------------------------------------------------


class ServiceState(StrEnum):
    """How an ECS service of the twin is doing, judged from its tasks.

    ACTIVE: every desired task is in service. STARTING: fewer in service than desired and
    nothing has failed yet (starting, or scaling out). DEPLOYING: a rolling deployment is
    replacing the tasks. DEGRADED: some tasks in service but fewer than desired, after
    tasks failed (exited, failed health checks or failed to start); replacements are on
    their way. FAILING: no task in service after failures, or tasks keep failing at start
    (``failure`` says why). DRAINING: the service is stopping.
    """

    ACTIVE = "ACTIVE"
    STARTING = "STARTING"
    DEPLOYING = "DEPLOYING"
    DEGRADED = "DEGRADED"
    FAILING = "FAILING"
    DRAINING = "DRAINING"


def service_state(
    *,
    desired: int,
    healthy: int,
    restarts: int,
    failed_starts: int,
    crash_looping: bool,
    deploying: bool,
    stopping: bool,
) -> ServiceState:
    """The `ServiceState` of a service with these counts (see `ServiceState` for each).

    ``crash_looping``: its tasks failed at start often enough in a row for the scheduler
    to report a failure.
    """
    if stopping:
        return ServiceState.DRAINING
    if healthy >= desired:
        return ServiceState.DEPLOYING if deploying else ServiceState.ACTIVE
    failed = restarts > 0 or failed_starts > 0
    if crash_looping or (failed and healthy == 0):
        return ServiceState.FAILING
    if failed:
        return ServiceState.DEGRADED
    return ServiceState.DEPLOYING if deploying else ServiceState.STARTING


class TaskSummary(StatusModel):
    """One ECS task of a service (a replaced task is a new task with a new id)."""

    id: str = Field(description="The task id (32 hex digits, as on Fargate).")
    service: str = Field(description="The ECS service the task belongs to.")
    address: str | None = Field(
        description="ip:port the container listens at; null until its network interface "
        "(ENI) is attached."
    )
    availability_zone: str | None = Field(
        description="The Availability Zone of the task's subnet; null until its ENI is attached."
    )
    last_status: TaskStatus = Field(description="ECS lastStatus.")
    desired_status: TaskStatus = Field(description="ECS desiredStatus: RUNNING, or STOPPED.")
    health: HealthStatus = Field(description="ECS healthStatus (the container health check).")
    pid: int | None = Field(
        description="The process of the task's command (in VPC mode PID 1 of the task's own "
        "PID namespace, numbered as this machine sees it); null until it was launched."
    )
    started_at: datetime | None = Field(description="When the container started (UTC).")
    stopped_at: datetime | None = Field(description="When the task stopped (UTC).")
    exit_code: int | None = Field(
        description="The container's exit code once it exited (negative: killed by that signal)."
    )
    stopped_reason: str | None = Field(
        description="ECS stoppedReason, e.g. 'Essential container in task exited (exit code 1)'."
    )
    log: Path = Field(description="The task's log file (what `fargo logs` prints).")

    @classmethod
    def of(cls, task: Task) -> TaskSummary:
        eni = task.eni
        return cls(
            id=task.id,
            service=task.service,
            address=f"{eni.ip}:{task.port}" if eni is not None else None,
            availability_zone=task.availability_zone,
            last_status=task.last_status,
            desired_status=task.desired_status,
            health=task.health,
            pid=container_pid(task.pid) if task.pid is not None else None,
            started_at=task.started_at,
            stopped_at=task.stopped_at,
            exit_code=task.exit_code,
            stopped_reason=task.stopped_reason,
            log=task.log_path,
        )


class ServiceStatus(StatusModel):
    """One ECS service: its counts, its state, and the truth about its failures."""

    name: str = Field(description="The service's name in the spec.")
    state: ServiceState = Field(
        description="How the service is doing, judged from its tasks (see ServiceState)."
    )
    desired: int = Field(description="ECS desiredCount.")
    running: int = Field(description="ECS runningCount: tasks RUNNING (in service or not yet).")
    pending: int = Field(
        description="ECS pendingCount: tasks being provisioned or launched, not yet listening."
    )
    healthy: int = Field(
        description="Tasks in service: their container and every target group call them healthy."
    )
    revision: int = Field(description="The task definition revision the service runs.")
    restarts: int = Field(
        description="Tasks that were in service and were replaced (exited or unhealthy)."
    )
    failed_starts: int = Field(
        description="Tasks in a row that failed before they were in service (reset by one "
        "that makes it); the scheduler backs off longer after each."
    )
    failure: str | None = Field(
        None,
        description="Set when tasks keep failing at start: the last failure and the task's "
        "last log lines.",
    )
    last_stop_reason: str | None = Field(
        None, description="The stoppedReason of the service's most recently stopped task."
    )
    tasks: list[TaskSummary] = Field(
        default_factory=list, description="The service's tasks, stopping ones included."
    )
    events: list[str] = Field(
        default_factory=list, description="The service's last events, oldest first."
    )

    def shortfall(self) -> str:
        """What the service lacks, e.g. ``backend-private 0/2 healthy (FAILING; last stop:
        Essential container in task exited (exit code 1))``."""
        counts = f"{self.name} {self.healthy}/{self.desired} healthy"
        failed = self.state in (ServiceState.DEGRADED, ServiceState.FAILING)
        if failed and self.last_stop_reason:
            return f"{counts} ({self.state}; last stop: {self.last_stop_reason})"
        return f"{counts} ({self.state})"


def readiness_of(services: Sequence[ServiceStatus]) -> Readiness:
    """Ready when every service has its desired count in service; otherwise what is missing,
    and the failure of the first service whose tasks keep failing at start."""
    failures = [f"service {s.name!r}: {s.failure}" for s in services if s.failure]
    return Readiness(
        ready=all(s.healthy >= s.desired for s in services),
        failure=failures[0] if failures else None,
        waiting=[s.shortfall() for s in services if s.healthy < s.desired],
    )


# -- Elastic Load Balancing -------------------------------------------------------------------


class ListenerRuleStatus(StatusModel):
    """A listener rule, as in the spec."""

    priority: int = Field(description="Rules are evaluated by ascending priority.")
    conditions: list[RuleCondition] = Field(description="Every condition must match.")
    action: Action = Field(description="What a matching request gets.")


class ListenerStatus(StatusModel):
    """A listener of a load balancer, and where the twin serves it."""

    port: int = Field(description="The listener's port in the spec.")
    protocol: Literal["HTTP", "HTTPS"] = Field(description="The listener's protocol.")
    ssl_policy: str | None = Field(None, description="The TLS policy of an HTTPS listener.")
    local_address: str = Field(
        description="The URL the twin serves the listener at (privileged ports moved up)."
    )
    rules: list[ListenerRuleStatus] = Field(
        default_factory=list, description="The rules, by ascending priority."
    )
    default_action: Action = Field(description="What a request that matches no rule gets.")


class LoadBalancerStatus(StatusModel):
    """An Application Load Balancer."""

    scheme: Literal["internet-facing", "internal"] = Field(description="ELBv2 Scheme.")
    address: str = Field(description="The local address its listeners are bound to.")
    idle_timeout: int = Field(description="Idle connection timeout, seconds.")
    listeners: list[ListenerStatus] = Field(default_factory=list, description="Its listeners.")


class RegisteredTarget(StatusModel):
    """A registered target and its health (ELBv2 ``TargetHealthDescription``)."""

    id: str = Field(description="The target's id: the ECS task id.")
    ip: str = Field(description="The target's address.")
    port: int = Field(description="The target's port.")
    state: TargetState = Field(description="TargetHealth.State.")
    reason: str | None = Field(
        None, description="TargetHealth.Reason, e.g. 'Target.ResponseCodeMismatch'."
    )
    description: str | None = Field(None, description="TargetHealth.Description.")


class TargetGroupStatus(StatusModel):
    """A target group: its health check, its targets, and which of them get requests."""

    health_check: HealthCheck = Field(description="The spec's health check of the group.")
    deregistration_delay: int = Field(description="Seconds a deregistered target may drain.")
    routable: list[str] = Field(
        default_factory=list,
        description="ip:port of the targets that get requests now (healthy ones; all but the "
        "draining ones when none is healthy: ALB fails open).",
    )
    targets: list[RegisteredTarget] = Field(
        default_factory=list, description="Every registered target, in registration order."
    )


class DataPlaneState(StrEnum):
    """Whether the data plane carries requests.

    SERVING: Caddy runs and answers. DOWN: Caddy exited, stopped answering (SIGSTOP, a
    deadlock) or cannot be restarted; the watchdog is restarting it (``problem`` says
    why) and the listeners queue new connections meanwhile. STOPPED: not started, or
    stopped with the twin.
    """

    SERVING = "serving"
    DOWN = "down"
    STOPPED = "stopped"


class DataPlaneStatus(StatusModel):
    """The load balancers' data plane: the process that carries the requests (Caddy)."""

    name: str = Field(
        description="What the data plane is, e.g. 'load balancer data plane (Caddy)'."
    )
    load_balancers: list[str] = Field(description="The load balancers this process serves.")
    pid: int | None = Field(description="Caddy's process id; null while it is not running.")
    restarts: int = Field(
        description="Times the watchdog restarted Caddy after it exited or stopped answering."
    )
    config_loads: int = Field(description="Configurations loaded through Caddy's admin API.")
    state: DataPlaneState = Field(
        DataPlaneState.SERVING, description="Whether it carries requests (see DataPlaneState)."
    )
    problem: str | None = Field(
        None,
        description="While DOWN, why, e.g. 'caddy has not answered its admin API for 3 s' or "
        "'caddy could not be restarted: Permission denied: …; retrying'; null otherwise.",
    )
    failed_restarts: int = Field(
        0, description="Restart attempts that failed (each is retried with back-off)."
    )


class LoadBalancingStatus(StatusModel):
    """Elastic Load Balancing: load balancers, target groups, data plane."""

    load_balancers: dict[str, LoadBalancerStatus] = Field(
        default_factory=dict, description="By name, as in the spec."
    )
    target_groups: dict[str, TargetGroupStatus] = Field(
        default_factory=dict, description="By name, as in the spec."
    )
    data_planes: list[DataPlaneStatus] = Field(
        default_factory=list,
        description="The data plane's processes: one Caddy for every load balancer in "
        "loopback mode, one per load balancer (in its ENI) in VPC mode.",
    )


# -- Cloud Map --------------------------------------------------------------------------------


class DiscoveryInstance(StatusModel):
    """A registered instance (Cloud Map ``DiscoverInstances``)."""

    id: str = Field(description="The instance id: the ECS task id.")
    ipv4: str = Field(description="AWS_INSTANCE_IPV4.")
    port: int = Field(description="AWS_INSTANCE_PORT.")
    health: InstanceHealthStatus = Field(description="The instance's custom health status.")


class DiscoveryServiceStatus(StatusModel):
    """A Cloud Map service and its instances."""

    name: str = Field(description="The service's DNS name in the namespace.")
    ttl: int = Field(description="TTL of its records, seconds.")
    routing_policy: RoutingPolicy = Field(description="How Route 53 answers for it.")
    instances: list[DiscoveryInstance] = Field(
        default_factory=list, description="Every registered instance, healthy or not."
    )


class ServiceConnectStatus(StatusModel):
    """A Service Connect endpoint, as the twin runs it: DNS, without a proxy."""

    endpoint: str = Field(description="What clients call: http://<dns_name>:<port>.")
    service: str = Field(description="The ECS service that serves it.")
    namespace: str = Field(description="The Cloud Map namespace.")
    discovery_name: str = Field(description="The Cloud Map service (API calls only).")
    runs_as: Literal["DNS, no proxy"] = Field(
        "DNS, no proxy",
        description="How the twin runs it: the DNS server answers the client alias with the "
        "healthy tasks' addresses; there is no proxy (no retries, outlier detection or "
        "proxy metrics).",
    )
    instances: list[DiscoveryInstance] = Field(
        default_factory=list, description="Every registered task, healthy or not."
    )


# -- the disk ----------------------------------------------------------------------------------


class DiskStatus(StatusModel):
    """What the twin's log writers could not write (a full or failing disk under the state
    folder). The services keep serving meanwhile: a line that does not fit is dropped."""

    problem: str | None = Field(
        None,
        description="The write error while writes fail (`No space left on device (ENOSPC)`); "
        "null while every log is written.",
    )
    since: datetime | None = Field(None, description="When writes began to fail (UTC).")
    dropped_log_lines: int = Field(
        0, description="Task log lines the log router could not write since it started."
    )
    dropped_events: int = Field(
        0, description="Events lost (the events file keeps the last 1,000 until it has room)."
    )


# -- the twin ---------------------------------------------------------------------------------


# -- metrics ------------------------------------------------------------------------------


class MetricDatapoint(StatusModel):
    """One period's value of a metric."""

    timestamp: datetime = Field(description="The start of the period (UTC).")
    value: float = Field(description="The statistic over the period.")


class MetricStatus(StatusModel):
    """One metric as CloudWatch names it: namespace, name, dimensions and statistic."""

    namespace: str = Field(description="e.g. AWS/ApplicationELB, AWS/ECS, ECS/ContainerInsights.")
    metric_name: str = Field(description="e.g. RequestCount, CPUUtilization, TargetResponseTime.")
    dimensions: dict[str, str] = Field(
        description="e.g. {'LoadBalancer': 'public', 'TargetGroup': 'backend-public'}: the "
        "spec's names (AWS's LoadBalancer and TargetGroup dimensions are resource ids)."
    )
    statistic: str = Field(description="Sum, Average, or a percentile: p50, p95, p99.")
    unit: str = Field(description="Count, Percent, Seconds, Megabytes, None (CPU units).")
    datapoints: list[MetricDatapoint] = Field(
        description="Oldest first: the last datapoint only in `fargo status`, the last few "
        "minutes in GET /metrics. Empty until a period has passed."
    )


class MetricsStatus(StatusModel):
    """The twin's metrics (`fargo top`, GET /metrics), from the load balancers' access logs,
    their target health and the tasks' kernel counters."""

    period_seconds: float = Field(
        6.0,
        description="Seconds one datapoint covers: CloudWatch's 60 s on the twin's clock "
        "(60 × the time scale: 6 at the default 0.1).",
    )
    container_insights: bool = Field(
        True,
        description="The spec's cluster.container_insights: the per-task ECS/ContainerInsights "
        "metrics are published only when it is on, as on AWS (the AWS/ECS per-service "
        "CPUUtilization and MemoryUtilization always are).",
    )
    metrics: list[MetricStatus] = Field(default_factory=list, description="Every metric.")

    def value(
        self, metric_name: str, statistic: str | None = None, **dimensions: str
    ) -> float | None:
        """The latest value of the metric with exactly these dimensions, or None."""
        for metric in self.metrics:
            if metric.metric_name != metric_name or (statistic and metric.statistic != statistic):
                continue
            if metric.dimensions == dimensions and metric.datapoints:
                return metric.datapoints[-1].value
        return None


class TwinStatus(StatusModel):
    """The whole twin: ``GET /status`` on the control plane, ``fargo status --json``."""

    schema_version: Literal[1] = Field(
        SCHEMA_VERSION, description="The version of this schema (see docs/status.md)."
    )
    spec: Path = Field(description="The spec the twin runs.")
    state_dir: Path = Field(description="The twin's state folder.")
    network_mode: str = Field(description="How tasks are networked: 'loopback' or 'vpc'.")
    time_scale: float = Field(
        description="AWS seconds → the twin's seconds for health checks and back-offs (1: AWS's)."
    )
    pid: int = Field(description="The control plane's process id.")
    ready_after_seconds: float | None = Field(
        None, description="Seconds from start until every service was first ready; null before."
    )
    readiness: Readiness = Field(description="Whether the twin is ready, or what it waits for.")
    endpoints: Endpoints = Field(description="Where to reach the twin.")
    services: list[ServiceStatus] = Field(
        default_factory=list, description="The ECS services, in the spec's order."
    )
    load_balancers: LoadBalancingStatus = Field(
        default_factory=LoadBalancingStatus,
        description="Load balancers, listeners, rules, target groups and the data plane.",
    )
    discovery: list[DiscoveryServiceStatus] = Field(
        default_factory=list, description="Cloud Map services and their instances."
    )
    service_connect: list[ServiceConnectStatus] = Field(
        default_factory=list,
        description="Service Connect endpoints and their tasks (the twin runs them as DNS).",
    )
    disk: DiskStatus = Field(
        default_factory=DiskStatus,
        description="Log lines and events the state folder's disk could not take.",
    )
    metrics: MetricsStatus = Field(
        default_factory=MetricsStatus,
        description="The current value of each metric (its last complete period).",
    )

    def service(self, name: str) -> ServiceStatus:
        """The service called ``name``; `KeyError` if the twin has none."""
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(f"no service {name!r}; the twin has: {[s.name for s in self.services]}")


def json_schema() -> dict[str, object]:
    """The JSON Schema of `TwinStatus` as served (``fargo status --json-schema``)."""
    schema: dict[str, object] = {"$schema": JSON_SCHEMA_DIALECT}
    schema.update(TwinStatus.model_json_schema(mode="serialization"))
    schema["title"] = "fargo status --json"
    return schema
