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
# A request as access logs that record no user agent write it: a quoted request line with
# nothing quoted after it (Werkzeug's, uvicorn's: `"GET /health HTTP/1.1" 200 -`), or a
# line that starts with the request (`GET /health 200 1.2 ms`, a bare `GET /health`).
QUOTED_REQUEST = re.compile(r'"(?:GET|HEAD) (/[^\s"?]*)(?:\?[^\s"]*)? HTTP/[\d.]+"[^"]*$')
BARE_REQUEST = re.compile(r"^\s*(?:GET|HEAD) (/[^\s?]*)(?=[\s?]|$)")


def is_health_check(message: str, paths: Collection[str] = ()) -> bool:
    """Whether ``message`` logs a health check; ``paths``: the task's health-check paths.
    A line that records another user agent (`"curl/8.5"`) is not one, whatever its path."""
    if any(mark in message for mark in MARKS):
        return True
    if not paths:
        return False
    found = QUOTED_REQUEST.search(message) or BARE_REQUEST.match(message)
    return found is not None and found.group(1) in paths


def checked(paths: Iterable[str]) -> frozenset[str]:
    """The health-check paths a request line is known by (without their query): all
    but ``/``."""
    return frozenset(p.partition("?")[0] for p in paths if p.partition("?")[0] != "/")


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
