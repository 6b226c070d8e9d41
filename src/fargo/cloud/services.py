"""ECS services on Fargate: task definition, roles, logs, security group, scaling."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_servicediscovery as servicediscovery
from constructs import Construct

from fargo.cloud import acknowledgements as ack
from fargo.cloud import policy
from fargo.cloud.alarms import deployment_alarms, watch_deployments
from fargo.cloud.logs import log_group
from fargo.cloud.secrets import grant_secrets
from fargo.cloud.service_connect import PORT_MAPPING_NAME
from fargo.cloud.tracing import add_xray_daemon, tracing_environment
from fargo.spec.autoscaling import request_target_group
from fargo.spec.model import Capacity, ContainerHealthCheck, Service

# jsii exposes the enum-like class's members as class properties, which mypy reads as methods.
HTTP_APP_PROTOCOL = cast(ecs.AppProtocol, ecs.AppProtocol.http)


class FargateService(Construct):
    """One spec service: a Fargate task definition and the ECS service that runs it.

    - the task runs as a non-root user on a read-only root file system (a task-storage
      volume is mounted writable at ``/tmp``), logs to its own log group;
    - the execution role may pull from the service's ECR repository, write its logs and
      read the service's ``secrets`` (`fargo.cloud.secrets`), nothing else; the task role
      (the application's own AWS identity) has no policy;
    - tasks run in the private subnets without public IPs; deployments keep the spec's
      min/max percent and roll back when the circuit breaker trips, or when a deployment
      alarm goes off (`fargo.cloud.alarms`: the targets answer 5xx or fail health checks);
    - the security group admits nothing until target groups and callers are connected
      (`fargo.cloud.security`); egress is HTTPS to AWS APIs through the NAT gateway
      (``https_anywhere``), or, without one, to the VPC endpoints only;
    - with ``service_connect_server`` the port mapping declares HTTP for Service Connect
      (`fargo.cloud.service_connect` enables it on ``service``);
    - with ``tracing`` the X-Ray daemon runs as a sidecar and the task role may write
      traces (`fargo.cloud.tracing`);
    - with ``autoscaling`` Application Auto Scaling owns the count: target tracking on
      CPU, memory and the ALBRequestCountPerTarget of the target group it counts, one of
      ``target_groups`` (the spec service's, in its order).

    Children: ``log_group``, ``execution_role``, ``task_role``, ``task_definition``,
    ``container``, ``xray_daemon`` (or None), ``security_group``, ``service``, ``alarms``,
    ``scaling`` (or None).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        name: str,
        service: Service,
        cluster: ecs.ICluster,
        subnets: ec2.SubnetSelection,
        repository: ecr.IRepository,
        image_tag: str,
        environment: Mapping[str, str],
        log_retention_days: int,
        plain_secrets: bool = False,
        target_groups: Sequence[elbv2.ApplicationTargetGroup] = (),
        discovery_service: servicediscovery.IService | None = None,
        https_anywhere: bool = True,
        service_connect_server: bool = False,
        tracing: bool = False,
    ) -> None:
        super().__init__(scope, id)
        self.name = name
        self.port = service.port
        self.log_group = log_group(self, "Logs", retention_days=log_retention_days)
        self.execution_role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=_ecs_tasks_principal(),
            description=f"ECS agent for {name}: pull its image, write its logs"
            + (", read its secrets" if service.secrets else ""),
        )
        ack.execution_role_policy(self.execution_role)
        self.task_role = iam.Role(
            self,
            "TaskRole",
            assumed_by=_ecs_tasks_principal(),
            description=f"The application {name} itself: "
            + ("writes X-Ray traces, nothing else" if tracing else "no AWS permissions"),
        )
        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "TaskDefinition",
            cpu=service.cpu,
            memory_limit_mib=service.memory,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.of(service.architecture),
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
            execution_role=self.execution_role,
            task_role=self.task_role,
            volumes=[ecs.Volume(name=policy.SCRATCH_VOLUME)],
        )
        if not plain_secrets:
            ack.task_definition(self.task_definition)
        self.container = self.task_definition.add_container(
            "Container",
            container_name=name,
            image=ecs.ContainerImage.from_ecr_repository(repository, image_tag),
            port_mappings=[
                ecs.PortMapping(
                    container_port=service.port,
                    name=PORT_MAPPING_NAME,
                    # HTTP: the Service Connect proxy reports HTTP metrics and retries requests
                    app_protocol=HTTP_APP_PROTOCOL if service_connect_server else None,
                )
            ],
            environment={**environment, **(tracing_environment(name) if tracing else {})} or None,
            logging=ecs.LogDrivers.aws_logs(stream_prefix=name, log_group=self.log_group),
            readonly_root_filesystem=True,
            user=policy.CONTAINER_USER,
            health_check=_health_check(service.port, service.health_check),
            stop_timeout=cdk.Duration.seconds(service.stop_timeout),
            essential=True,
            # awsvpc gives the task its own network namespace, so this sysctl only lets the
            # non-root process bind the spec's port (e.g. 80), nothing on the host.
            system_controls=[
                ecs.SystemControl(
                    namespace="net.ipv4.ip_unprivileged_port_start", value=str(service.port)
                )
            ]
            if service.port < policy.PRIVILEGED_PORT_LIMIT
            else None,
        )
        grant_secrets(self.task_definition, self.execution_role, service.secrets)
        self.xray_daemon = (
            add_xray_daemon(
                self.task_definition, task_role=self.task_role, log_group=self.log_group
            )
            if tracing
            else None
        )
        self.container.add_mount_points(
            ecs.MountPoint(
                container_path=policy.SCRATCH_PATH,
                source_volume=policy.SCRATCH_VOLUME,
                read_only=False,
            )
        )

        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=cluster.vpc,
            description=f"tasks of service {name}",
            allow_all_outbound=False,
        )
        if https_anywhere:
            # Without a NAT gateway, `fargo.cloud.security.connect_endpoints` opens HTTPS to
            # the VPC endpoints only.
            self.security_group.add_egress_rule(
                ec2.Peer.any_ipv4(),
                ec2.Port.tcp(policy.TASK_EGRESS_HTTPS_PORT),
                "HTTPS to ECR, CloudWatch Logs and AWS APIs through the NAT gateway",
            )
        self.service = ecs.FargateService(
            self,
            "Service",
            cluster=cluster,
            task_definition=self.task_definition,
            desired_count=service.desired_count,
            min_healthy_percent=service.min_healthy_percent,
            max_healthy_percent=service.max_percent,
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            assign_public_ip=False,
            vpc_subnets=subnets,
            security_groups=[self.security_group],
            platform_version=ecs.FargatePlatformVersion.LATEST,
            capacity_provider_strategies=_capacity(service.capacity),
            propagate_tags=ecs.PropagatedTagSource.SERVICE,
            enable_ecs_managed_tags=True,
            health_check_grace_period=cdk.Duration.seconds(policy.HEALTH_CHECK_GRACE_SECONDS)
            if target_groups
            else None,
        )
        cfn_service = self.service.node.default_child
        assert isinstance(cfn_service, cdk.CfnResource)
        cfn_service.add_metadata(policy.METADATA_KEY, {"service": name})
        if service.autoscaling is not None:
            # Application Auto Scaling owns the count: a DesiredCount in the template would
            # reset it on every deploy. ECS creates the service with one task; the scalable
            # target raises it to min_capacity at once.
            cfn_service.add_property_deletion_override("DesiredCount")
        for target_group in target_groups:
            # Registers the tasks by IP and lets the load balancer's security group reach
            # the container port (an ingress rule here, an egress rule there).
            target_group.add_target(
                self.service.load_balancer_target(container_name=name, container_port=service.port)
            )
        self.alarms = deployment_alarms(self, service=name, target_groups=target_groups)
        watch_deployments(self.service, self.alarms)
        if discovery_service is not None:
            self.service.associate_cloud_map_service(
                service=discovery_service, container=self.container, container_port=service.port
            )

        self.scaling: ecs.ScalableTaskCount | None = None
        if service.autoscaling is not None:
            bounds = service.autoscaling
            self.scaling = self.service.auto_scale_task_count(
                min_capacity=bounds.min_capacity, max_capacity=bounds.max_capacity
            )
            if bounds.target_cpu_utilization is not None:
                self.scaling.scale_on_cpu_utilization(
                    "Cpu", target_utilization_percent=bounds.target_cpu_utilization
                )
            if bounds.target_memory_utilization is not None:
                self.scaling.scale_on_memory_utilization(
                    "Memory", target_utilization_percent=bounds.target_memory_utilization
                )
            counted = request_target_group(service)
            if bounds.target_requests_per_target is not None and counted is not None:
                # ALBRequestCountPerTarget of that group, on the load balancer it belongs to
                # (the policy's ResourceLabel); `fargo.spec.autoscaling` makes it one.
                self.scaling.scale_on_request_count(
                    "Requests",
                    requests_per_target=bounds.target_requests_per_target,
                    target_group=target_groups[service.target_groups.index(counted)],
                )

    @property
    def connections(self) -> ec2.Connections:
        return self.service.connections


def _capacity(capacity: Capacity) -> list[ecs.CapacityProviderStrategy] | None:
    """On-demand Fargate for the base and the rest's on-demand share, Fargate Spot for the
    spec's share beyond the base; None (the Fargate launch type) without Spot."""
    if capacity.spot == 0:
        return None
    return [
        ecs.CapacityProviderStrategy(
            capacity_provider="FARGATE", base=capacity.on_demand_base, weight=100 - capacity.spot
        ),
        ecs.CapacityProviderStrategy(capacity_provider="FARGATE_SPOT", weight=capacity.spot),
    ]


def _ecs_tasks_principal() -> iam.IPrincipal:
    """ECS tasks of this account and region only (no confused deputy)."""
    return iam.ServicePrincipal(
        policy.ECS_TASKS_PRINCIPAL,
        conditions={
            "StringEquals": {"aws:SourceAccount": cdk.Aws.ACCOUNT_ID},
            "ArnLike": {
                "aws:SourceArn": f"arn:{cdk.Aws.PARTITION}:ecs:{cdk.Aws.REGION}:"
                f"{cdk.Aws.ACCOUNT_ID}:*"
            },
        },
    )


def _health_check(port: int, check: ContainerHealthCheck) -> ecs.HealthCheck:
    """The spec's ``command`` as it is, or an HTTP GET on the container port with the
    image's Python: no curl needed in a Python image.

    ``urlopen`` raises on a refused connection, a timeout or a status >= 400. Its own
    timeout is a second shorter than ECS's, which also covers the interpreter's start.
    """
    url = f"http://127.0.0.1:{port}{check.path}"
    seconds = max(1, check.timeout - 1)
    probe = f"import urllib.request; urllib.request.urlopen({url!r}, timeout={seconds})"
    return ecs.HealthCheck(
        command=check.command or ["CMD", policy.CONTAINER_HEALTH_CHECK_PYTHON, "-c", probe],
        interval=cdk.Duration.seconds(check.interval),
        timeout=cdk.Duration.seconds(check.timeout),
        retries=check.retries,
        start_period=cdk.Duration.seconds(check.start_period),
    )
