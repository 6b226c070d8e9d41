"""Security and operations policy of the cloud rendering: named values in one place.

Values the spec decides (ports, counts, TLS policy, retention) come from the spec; these
are the choices fargo makes for every spec.
"""

from __future__ import annotations

from typing import Final

from fargo.spec import defaults

# Tasks run as this uid:gid, never root; the images must work as it (see docs/cloud.md).
CONTAINER_USER: Final = "10001:10001"  # the USER of every service Dockerfile
# The root file system is read-only; this path is a writable task-storage volume.
SCRATCH_VOLUME: Final = "scratch"
SCRATCH_PATH: Final = "/tmp"  # noqa: S108 - a per-task volume, not a shared /tmp
# Ports below this need root unless the kernel is told otherwise (ip_unprivileged_port_start).
PRIVILEGED_PORT_LIMIT: Final = 1024

# Task egress: HTTPS to anywhere (ECR image pulls, CloudWatch Logs, AWS APIs) through the
# NAT gateway; everything else only to the security groups of what a service `calls`.
TASK_EGRESS_HTTPS_PORT: Final = 443
# Grace before ECS acts on load balancer health checks of a task that has just started.
HEALTH_CHECK_GRACE_SECONDS: Final = defaults.HEALTH_CHECK_GRACE_SECONDS  # the twin honours it too
# Deployment alarms (fargo.cloud.alarms): 5xx answers of a service's targets in a minute,
# and minutes in a row with an unhealthy target, that roll a deployment back.
DEPLOYMENT_5XX_THRESHOLD: Final = 10
DEPLOYMENT_UNHEALTHY_MINUTES: Final = 2
# The container health check: HTTP GET on the container port with the image's Python.
CONTAINER_HEALTH_CHECK_PYTHON: Final = "python3"

# Cloud Map: services register by the container's A record; SRV needs the port.
# ALB access logs: objects older than the spec's retention expire; old versions after a day.
NONCURRENT_VERSION_EXPIRATION_DAYS: Final = 1
ABORT_INCOMPLETE_UPLOAD_DAYS: Final = 1

# Principals trusted by the task roles.
ECS_TASKS_PRINCIPAL: Final = "ecs-tasks.amazonaws.com"

# Stacks, in deploy order. The registry is deployed before images are pushed to it.
NETWORK_STACK: Final = "network"
REGISTRY_STACK: Final = "registry"
APP_STACK: Final = "app"
STACK_ORDER: Final = (NETWORK_STACK, REGISTRY_STACK, APP_STACK)

# Every resource carries this tag with the spec's name (cost allocation, cleanup).
SYSTEM_TAG: Final = "fargo:system"

# Template metadata fargo adds so tools (the parity evaluator, deploy) map resources to
# spec names.
METADATA_KEY: Final = "fargo"
