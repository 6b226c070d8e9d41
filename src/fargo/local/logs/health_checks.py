"""Which log lines are health checks: the requests that name a health checker's user agent
(a load balancer's ``ELB-HealthChecker/2.0``, as ALB's, or the twin's container health
check), as access logs that record the user agent show them."""

from __future__ import annotations

from fargo.local.ecs.container_health import CONTAINER_HEALTH_CHECK_USER_AGENT
from fargo.local.elb.target_health import HEALTH_CHECK_USER_AGENT

MARKS = (HEALTH_CHECK_USER_AGENT.split("/")[0], CONTAINER_HEALTH_CHECK_USER_AGENT)


def is_health_check(message: str) -> bool:
    return any(mark in message for mark in MARKS)
