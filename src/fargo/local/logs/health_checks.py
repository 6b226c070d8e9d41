"""Which log lines are health checks: the requests that name a health checker's user agent
(a load balancer's ``ELB-HealthChecker/2.0``, as ALB's, or the twin's container health
check), as access logs that record the user agent show them; and, for logs that do not
(Werkzeug's, uvicorn's, a bare ``GET /health``), a ``GET`` or ``HEAD`` of a health-check
path of the task's target groups (`health_check_paths`) — but ``/``, which people ask
for too.

    paths = health_check_paths(spec)["web"]          # {"/health"}
    is_health_check('127.0.0.1 - - "GET /health HTTP/1.1" 200 -', paths)   # True
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING

from fargo.local.ecs.container_health import CONTAINER_HEALTH_CHECK_USER_AGENT
from fargo.local.elb.target_health import HEALTH_CHECK_USER_AGENT

if TYPE_CHECKING:
    from fargo.spec.model import Spec

MARKS = (HEALTH_CHECK_USER_AGENT.split("/")[0], CONTAINER_HEALTH_CHECK_USER_AGENT)
# A request line as access logs write it: `GET /health HTTP/1.1`, `"GET /health"`, …
REQUEST = re.compile(r'(?:^|[\s"])(?:GET|HEAD) (/[^\s"?]*)(?=[\s"?]|$)')


def is_health_check(message: str, paths: Collection[str] = ()) -> bool:
    """Whether ``message`` logs a health check; ``paths``: the task's health-check paths."""
    if any(mark in message for mark in MARKS):
        return True
    return bool(paths) and any(m.group(1) in paths for m in REQUEST.finditer(message))


def checked(paths: Iterable[str]) -> frozenset[str]:
    """The health-check paths a request line is known by: all but ``/``."""
    return frozenset(path for path in paths if path != "/")


def health_check_paths(spec: Spec) -> dict[str, frozenset[str]]:
    """Each service's health-check paths: its target groups'."""
    return {
        name: checked(
            spec.target_groups[group].health_check.path
            for group in service.target_groups
            if group in spec.target_groups
        )
        for name, service in spec.services.items()
    }
