"""ARNs and ids in AWS's formats, from the twin's fixed account id and the spec's region.

Ids that AWS makes random (a load balancer's, a Cloud Map namespace's) are derived from
names here, so the same spec gets the same ARNs on every start.
"""

from __future__ import annotations

import hashlib

from fargo.local.ecs.task import ACCOUNT


def stable_id(*parts: object, length: int = 16) -> str:
    """Hex digits derived from ``parts`` (AWS's look, the same on every run)."""
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:length]


def arn(service: str, region: str, resource: str) -> str:
    return f"arn:aws:{service}:{region}:{ACCOUNT}:{resource}"


def cluster(region: str, name: str) -> str:
    return arn("ecs", region, f"cluster/{name}")


def service(region: str, cluster_name: str, name: str) -> str:
    return arn("ecs", region, f"service/{cluster_name}/{name}")


def task_definition(region: str, family: str, revision: int) -> str:
    return arn("ecs", region, f"task-definition/{family}:{revision}")


def load_balancer(region: str, name: str) -> str:
    return arn("elasticloadbalancing", region, f"loadbalancer/app/{name}/{stable_id(name)}")


def listener(region: str, lb: str, port: int) -> str:
    lb_id = stable_id(lb)
    return arn("elasticloadbalancing", region, f"listener/app/{lb}/{lb_id}/{stable_id(lb, port)}")


def rule(region: str, lb: str, port: int, priority: int | str) -> str:
    ids = f"{stable_id(lb)}/{stable_id(lb, port)}/{stable_id(lb, port, priority)}"
    return arn("elasticloadbalancing", region, f"listener-rule/app/{lb}/{ids}")


def target_group(region: str, name: str) -> str:
    return arn("elasticloadbalancing", region, f"targetgroup/{name}/{stable_id('tg', name)}")
