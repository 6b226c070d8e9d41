"""The architecture spec: what ``fargo.yaml`` holds, as typed models.

The spec says *what* runs, never how a world fakes it: `fargo.cloud` renders it
to CloudFormation, `fargo.local` to processes, Caddy and a DNS server.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from fargo.spec import defaults
from fargo.spec.base import Model
from fargo.spec.elb import LoadBalancer, Port, TargetGroup
from fargo.spec.secrets import Secret, env_name

RecordType = Literal["A", "SRV"]
EnvName = Annotated[str, AfterValidator(env_name)]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,31}$")]
# An AWS service's endpoint name: the tail of com.amazonaws.<region>.<name>, e.g. ecr.dkr.
EndpointName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{0,62}$")]
NAMESPACE_PATTERN = r"^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z0-9]+$"


def _network_address(value: object) -> object:
    """A CIDR block with host bits set (10.0.1.5/24) names its network (10.0.1.0/24)."""
    if isinstance(value, str):
        try:
            ipaddress.IPv4Network(value.strip())
        except ValueError as error:
            if "host bits set" not in str(error):
                return value  # pydantic says what else is wrong
            network = ipaddress.IPv4Network(value.strip(), strict=False)
            raise ValueError(f"{value} has host bits set; did you mean {network}?") from None
    return value


Cidr = Annotated[ipaddress.IPv4Network, BeforeValidator(_network_address)]


class Subnets(Model):
    public: list[Cidr] = Field(min_length=1)
    private: list[Cidr] = Field(min_length=1)


class Network(Model):
    """The VPC: CIDR, Availability Zones, one public and one private subnet per AZ."""

    cidr: Cidr
    availability_zones: int = Field(2, ge=2, le=6)
    nat_gateways: int = Field(
        1,
        ge=0,
        le=6,
        description="NAT gateways the private subnets reach the internet and AWS through; "
        "tasks pull their images through them, so 0 needs vpc_endpoints for ecr.api, "
        "ecr.dkr, s3 and logs.",
    )
    subnets: Subnets
    flow_logs: bool = True
    vpc_endpoints: list[EndpointName] = Field(
        default_factory=list,
        description="AWS services the private subnets reach through VPC endpoints, by their "
        "endpoint names (com.amazonaws.<region>.<name>): s3 and dynamodb are gateway "
        "endpoints (no charge), every other an interface endpoint in each zone. With "
        "nat_gateways: 0, tasks need ecr.api, ecr.dkr, s3 and logs to start.",
        # Editors complete the names; `fargo validate` says which one was meant.
        json_schema_extra={"items": {"type": "string", "enum": list(defaults.VPC_ENDPOINT_NAMES)}},
    )


class Image(Model):
    """A container image: its build context and Dockerfile, pushed to its own ECR repository."""

    context: str = "services"
    dockerfile: str
    scan_on_push: bool = True
    tag_mutability: Literal["IMMUTABLE", "MUTABLE"] = "IMMUTABLE"
    max_images: int = Field(defaults.ECR_MAX_IMAGES, ge=1)


class ServiceConnectDefaults(Model):
    """The cluster's Service Connect namespace (ECS ``serviceConnectDefaults``).

    The Cloud Map namespace every Service Connect service of the spec joins: the
    ``discovery`` section's private DNS namespace when it has that name, else a new
    HTTP namespace (API calls only; Service Connect creates no DNS records either way).
    """

    namespace: str = Field(
        pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$",
        max_length=253,
        description="Cloud Map namespace for Service Connect: discovery.namespace, or a "
        "new name for an HTTP namespace.",
    )


class Cluster(Model):
    name: Name
    container_insights: bool = True
    service_connect: ServiceConnectDefaults | None = Field(
        None,
        description="The Service Connect namespace; needed when a service has service_connect.",
    )


def _a_records() -> list[RecordType]:
    return ["A"]


class DiscoveryService(Model):
    """A Cloud Map service: DNS records for the registered tasks."""

    name: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
    ttl: int = Field(defaults.DISCOVERY_TTL_SECONDS, ge=0, le=2147483647)
    record_types: list[RecordType] = Field(default_factory=_a_records, min_length=1)
    routing_policy: Literal["MULTIVALUE", "WEIGHTED"] = "MULTIVALUE"
    failure_threshold: int = Field(1, ge=1, le=10)


class Discovery(Model):
    """A Cloud Map private DNS namespace (a Route 53 private hosted zone in the VPC)."""

    namespace: str = Field(pattern=NAMESPACE_PATTERN)
    services: list[DiscoveryService] = Field(default_factory=list)

    def fqdn(self, service: str) -> str:
        return f"{service}.{self.namespace}"


class ServiceConnect(Model):
    """The service as an ECS Service Connect server (a client-server service): one endpoint,
    ``http://<dns_name>:<port>``, that the services calling it reach through the Service
    Connect proxy in their own tasks (`fargo.spec.service_connect`)."""

    discovery_name: str | None = Field(
        None,
        pattern=r"^[a-z0-9_][a-z0-9_-]{0,63}$",
        description="The Cloud Map service ECS creates in the namespace, and the name "
        "${service_connect:NAME} refers to; default: the service's name.",
    )
    dns_name: str | None = Field(
        None,
        max_length=253,
        pattern=r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9])?)*$",
        description="The client alias: the name clients call; default: "
        "<discovery_name>.<namespace>.",
    )
    port: Port | None = Field(
        None, description="The client alias's port; default: the container port."
    )


class ContainerHealthCheck(Model):
    """The container health check ECS runs inside the task: an HTTP GET of ``path`` on the
    container port (on AWS run with the image's ``python3``), or ``command``."""

    path: str = Field("/", pattern=r"^/")
    command: list[str] | None = Field(
        None,
        description='A command instead of the HTTP GET, in ECS\'s form: ["CMD", program, '
        'argument, ...] or ["CMD-SHELL", "a shell line"]; healthy when it exits 0. It runs '
        "inside the task, as its user, with the image's tools (for an image without Python: "
        "curl, wget, node -e ..., the service's own binary).",
        json_schema_extra={"prefixItems": [{"enum": ["CMD", "CMD-SHELL"]}], "minItems": 2},
    )
    interval: int = Field(30, ge=5, le=300)
    timeout: int = Field(5, ge=2, le=60)
    retries: int = Field(3, ge=1, le=10)
    start_period: int = Field(10, ge=0, le=300)

    @field_validator("command", mode="before")
    @classmethod
    def _command_is_a_list(cls, value: object) -> object:
        if isinstance(value, str):
            raise ValueError(
                f'a string ({value!r}); ECS takes a list: [CMD-SHELL, "a shell line"] or '
                "[CMD, program, argument, ...]"
            )
        return value

    @field_validator("command")
    @classmethod
    def _command_in_ecs_form(cls, command: list[str] | None) -> list[str] | None:
        if command is None:
            return None
        form = '["CMD", program, argument, ...] (run as it is) or ["CMD-SHELL", "a shell line"]'
        if not command or command[0] not in ("CMD", "CMD-SHELL"):
            first = repr(command[0]) if command else "nothing"
            raise ValueError(f"starts with {first}; ECS takes {form} (run by /bin/sh -c)")
        if len(command) == 1:
            raise ValueError(f"{command[0]} with nothing to run; ECS takes {form}")
        if command[0] == "CMD-SHELL" and len(command) != 2:
            raise ValueError(
                f'a CMD-SHELL command is one shell line: ["CMD-SHELL", "..."] ({len(command) - 1} '
                "strings given; join them into one)"
            )
        if not all(word.strip() for word in command[1:]):
            raise ValueError("an empty program or shell line")
        return command

    @model_validator(mode="after")
    def _path_or_command(self) -> ContainerHealthCheck:
        if self.command is not None and "path" in self.model_fields_set:
            raise ValueError(
                "give path (an HTTP GET) or command, not both: a command replaces the GET"
            )
        return self

    def argv(self) -> list[str] | None:
        """What the command runs (``/bin/sh -c`` for CMD-SHELL); None for the HTTP GET."""
        if self.command is None:
            return None
        if self.command[0] == "CMD-SHELL":
            return ["/bin/sh", "-c", self.command[1]]
        return list(self.command[1:])


class Autoscaling(Model):
    """Application Auto Scaling of the service's desired count: a target tracking policy
    for each target given (out when any asks, in when all do)."""

    min_capacity: int = Field(ge=0)
    max_capacity: int = Field(ge=1)
    target_cpu_utilization: int | None = Field(70, ge=1, le=100)
    target_memory_utilization: int | None = Field(None, ge=1, le=100)
    target_requests_per_target: int | None = Field(
        None,
        ge=1,
        description="ALBRequestCountPerTarget: the requests a minute each task of the "
        "service should take from its target group (target_group); the count scales out "
        "above it and in below 90 % of it. target_cpu_utilization still applies unless "
        "null.",
    )
    target_group: str | None = Field(
        None,
        description="The target group whose requests target_requests_per_target counts: "
        "one of the service's target_groups; needed only when it has more than one.",
    )

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
        if self.min_capacity > self.max_capacity:
            raise ValueError(
                f"min_capacity {self.min_capacity} is above max_capacity {self.max_capacity}"
            )
        return self


class Capacity(Model):
    """Where a service's tasks run: Fargate on-demand, and a share on Fargate Spot (about
    70 % cheaper; a Spot task can be stopped with two minutes' notice, and ECS starts
    another)."""

    spot: int = Field(
        0,
        ge=0,
        le=100,
        description="Percent of the tasks beyond on_demand_base that run on Fargate Spot.",
    )
    on_demand_base: int = Field(
        1, ge=0, le=100000, description="Tasks that always run on-demand, before any on Spot."
    )


class Service(Model):
    """An ECS service on Fargate: a task definition and the scheduler that keeps it running."""

    image: str
    port: Port
    cpu: int = defaults.TASK_CPU
    memory: int = defaults.TASK_MEMORY
    architecture: Literal["X86_64", "ARM64"] = "X86_64"
    desired_count: int = Field(1, ge=0, le=defaults.MAX_DESIRED_COUNT)
    min_healthy_percent: int = Field(defaults.MIN_HEALTHY_PERCENT, ge=0, le=100)
    max_percent: int = Field(defaults.MAX_PERCENT, ge=100, le=400)
    stop_timeout: int = Field(defaults.STOP_TIMEOUT_SECONDS, ge=2, le=120)
    keep_alive: int = Field(
        defaults.KEEP_ALIVE_SECONDS,
        ge=1,
        le=86400,
        description="The service's HTTP keep-alive timeout, seconds (its tasks get it as "
        "HTTP_KEEP_ALIVE_TIMEOUT); must exceed every idle_timeout of load balancers "
        "forwarding to it.",
    )
    health_check: ContainerHealthCheck = Field(default_factory=ContainerHealthCheck)
    environment: dict[EnvName, str] = Field(default_factory=dict)
    env_file: list[str] = Field(
        default_factory=list,
        description="Files of KEY=VALUE lines (compose's format), relative to the spec, "
        "whose variables join the environment (environment wins; a later file over an "
        "earlier one).",
    )
    secrets: dict[EnvName, Secret] = Field(
        default_factory=dict,
        description="Environment variables whose values ECS reads at task start from SSM "
        "Parameter Store or Secrets Manager (the execution role may read exactly these); "
        "the twin reads each from its local source.",
    )
    target_groups: list[str] = Field(default_factory=list)
    discovery: str | None = None
    service_connect: ServiceConnect | None = Field(
        None,
        description="Serve an ECS Service Connect endpoint; the services that list this one "
        "in calls become Service Connect clients.",
    )
    calls: list[str] = Field(
        default_factory=list,
        description="Services or load balancers this service calls (opens security group "
        "paths; calling a Service Connect service makes this one its client).",
    )
    autoscaling: Autoscaling | None = None
    capacity: Capacity = Field(default_factory=Capacity)

    @field_validator("env_file", mode="before")
    @classmethod
    def _one_or_more_files(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value  # compose takes either


class Logging(Model):
    retention_days: int = Field(defaults.LOG_RETENTION_DAYS, ge=1)

    @field_validator("retention_days")
    @classmethod
    def _cloudwatch_period(cls, days: int) -> int:
        if days not in defaults.CLOUDWATCH_RETENTION_DAYS:
            longer = [d for d in defaults.CLOUDWATCH_RETENTION_DAYS if d >= days]
            raise ValueError(
                f"CloudWatch Logs keeps logs for one of "
                f"{', '.join(map(str, defaults.CLOUDWATCH_RETENTION_DAYS))} days; "
                f"found {days}" + (f" (next longer: {longer[0]})" if longer else "")
            )
        return days


class Spec(Model):
    """The whole architecture (``fargo.yaml``)."""

    name: Name
    region: str = Field("us-east-1", pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    network: Network
    images: dict[Name, Image]
    cluster: Cluster
    discovery: Discovery | None = None
    target_groups: dict[Name, TargetGroup] = Field(default_factory=dict)
    load_balancers: dict[Name, LoadBalancer] = Field(default_factory=dict)
    services: dict[Name, Service] = Field(min_length=1)
    logging: Logging = Field(default_factory=Logging)
    tracing: Literal["off", "xray"] = Field(
        defaults.TRACING,
        description="xray: every service traces its requests with AWS X-Ray (an X-Ray "
        "daemon sidecar in each task in AWS; the control plane receives the segments in the "
        "twin, `fargo traces`). Default: off.",
    )

    def services_in(self, target_group: str) -> list[str]:
        """The services whose tasks register in ``target_group``."""
        return [name for name, svc in self.services.items() if target_group in svc.target_groups]

    def only_load_balancer(self, name: str) -> Spec:
        """This spec with load balancer ``name`` alone (one data plane per load balancer)."""
        return self.model_copy(update={"load_balancers": {name: self.load_balancers[name]}})

    def discovery_service(self, name: str) -> DiscoveryService | None:
        if self.discovery is None:
            return None
        return next((d for d in self.discovery.services if d.name == name), None)
