"""X-Ray tracing of a service (spec: ``tracing: xray``): the daemon as a sidecar.

The X-Ray daemon runs in each task next to the application, as AWS documents for Fargate:
the application sends its segments over UDP to ``127.0.0.1:2000`` (the task's network
namespace is shared), the daemon batches them to the X-Ray API. What it adds:

- the ``xray-daemon`` container (AWS's image), not essential (a crashed daemon costs
  traces, not the service), inside the task's CPU and memory: it reserves
  `XRAY_DAEMON_CPU_UNITS` and `XRAY_DAEMON_MEMORY_RESERVATION_MIB` of the task's, the
  task's size is not changed; it logs to the service's log group (``xray/…`` streams);
- ``AWS_XRAY_DAEMON_ADDRESS`` and ``AWS_XRAY_TRACING_NAME`` (the service's name) in the
  application's environment, which `service_kit.xray` reads;
- on the task role (the application's identity; the daemon shares it), the write and
  sampling actions X-Ray's managed ``AWSXRayDaemonWriteAccess`` grants, and nothing else.
"""

from __future__ import annotations

from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs

from fargo.cloud import acknowledgements as ack
from fargo.spec import defaults

DAEMON_CONTAINER = "xray-daemon"
DAEMON_ADDRESS = f"127.0.0.1:{defaults.XRAY_DAEMON_PORT}"
# What AWSXRayDaemonWriteAccess allows: none has resource-level permissions.
XRAY_ACTIONS = (
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "xray:GetSamplingStatisticSummaries",
)
# The daemon's buffers, in MB: well inside its memory reservation.
DAEMON_BUFFER_MB = 8


def tracing_environment(name: str) -> dict[str, str]:
    """What the application container needs to send its segments to the sidecar."""
    return {"AWS_XRAY_DAEMON_ADDRESS": DAEMON_ADDRESS, "AWS_XRAY_TRACING_NAME": name}


def add_xray_daemon(
    task_definition: ecs.FargateTaskDefinition,
    *,
    task_role: iam.IRole,
    log_group: logs.ILogGroup,
) -> ecs.ContainerDefinition:
    """Add the daemon sidecar to ``task_definition`` and X-Ray's actions to ``task_role``."""
    container = task_definition.add_container(
        "XRayDaemon",
        container_name=DAEMON_CONTAINER,
        image=ecs.ContainerImage.from_registry(defaults.XRAY_DAEMON_IMAGE),
        cpu=defaults.XRAY_DAEMON_CPU_UNITS,
        memory_reservation_mib=defaults.XRAY_DAEMON_MEMORY_RESERVATION_MIB,
        essential=False,
        command=["--buffer-memory", str(DAEMON_BUFFER_MB)],
        port_mappings=[
            ecs.PortMapping(container_port=defaults.XRAY_DAEMON_PORT, protocol=ecs.Protocol.UDP)
        ],
        logging=ecs.LogDrivers.aws_logs(stream_prefix="xray", log_group=log_group),
        readonly_root_filesystem=True,
    )
    task_role.add_to_principal_policy(
        iam.PolicyStatement(actions=list(XRAY_ACTIONS), resources=["*"])
    )
    ack.xray_task_role(task_role)
    return container
