"""A task's environment: what the spec gives it, what fargo adds, which names ECS owns.

    task_environment(service)  # the spec's values (references unresolved) + what fargo adds
    reserved("AWS_REGION", service="web")  # why the spec may not set it (None: it may)

Both worlds start from `task_environment` and resolve the references their own way
(`fargo.cloud.environment`, `fargo.local.task_hooks`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from fargo.spec.model import Service

# The service's HTTP keep-alive timeout in seconds, from ``services.<name>.keep_alive``:
# the services' kit (services/service_kit/server.py) reads it.
KEEP_ALIVE_ENV: Final = "HTTP_KEEP_ALIVE_TIMEOUT"

# What ECS and Fargate set in every task (the region, the task role's credentials endpoint,
# the execution environment), and the credentials the task role provides: `reserved`
# refuses them in the spec, where a value would clash with theirs (or bypass the role).
# Other AWS_* settings (AWS_XRAY_DAEMON_ADDRESS, AWS_STS_REGIONAL_ENDPOINTS, …) are the
# user's. ECS_CONTAINER_METADATA_URI* (the task metadata endpoints) are ECS's too.
ECS_AWS_NAMES: Final = frozenset(
    {
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    }
)

# Names fargo sets from another spec field.
SET_FROM_FIELD: Final = {KEEP_ALIVE_ENV: "keep_alive"}


def task_environment(service: Service) -> dict[str, str]:
    """The environment a task of ``service`` starts with, besides what ECS sets."""
    return {**service.environment, KEEP_ALIVE_ENV: str(service.keep_alive)}


@dataclass(frozen=True)
class Reserved:
    """Why a name may not appear in a service's ``environment``, and what to do instead."""

    reason: str
    hint: str


def reserved(name: str, *, service: str) -> Reserved | None:
    """Why ``name`` may not appear in ``services.<service>.environment``; None when it may."""
    if name in ECS_AWS_NAMES:
        return Reserved(
            f"{name} is reserved: ECS and Fargate set it in every task, or the task role "
            "provides it",
            "pick another name; the task role provides credentials, and ECS sets AWS_REGION",
        )
    if name.startswith("ECS_CONTAINER_METADATA_URI"):
        return Reserved(
            f"{name} is reserved: ECS sets the task metadata endpoint in every task",
            "pick another name; read the endpoint from $ECS_CONTAINER_METADATA_URI_V4",
        )
    field = SET_FROM_FIELD.get(name)
    if field is not None:
        return Reserved(
            f"{name} is set by fargo from the service's {field} field",
            f"set services.{service}.{field} instead",
        )
    return None
