"""Autoscaling in the spec: which target group a request count policy tracks, and its checks,
for both worlds.

    request_target_group(spec.services["api"])   # "api": the one named, else the only one

``target_requests_per_target`` is a target tracking policy on ALBRequestCountPerTarget:
the requests a minute each registered task takes from one target group. AWS names that
group in the policy's ResourceLabel, so a service in several target groups names the one
to count (``target_group``); one in a single group needs no name; one in none cannot
scale on requests. The cloud renders the policy with CDK's ``scale_on_request_count``
(`fargo.cloud.services`), the twin from its load balancers' request metrics
(`fargo.local.appautoscaling.requests`).
"""

from __future__ import annotations

from collections.abc import Iterator

from fargo.spec.errors import Problem
from fargo.spec.model import Service, Spec
from fargo.spec.security import forwarding_load_balancers


def request_target_group(service: Service) -> str | None:
    """The target group whose requests ``service``'s request count policy tracks: the one
    named, else the service's only one; None without such a policy (or a group to count)."""
    scaling = service.autoscaling
    if scaling is None or scaling.target_requests_per_target is None:
        return None
    if scaling.target_group is not None:
        return scaling.target_group
    if len(service.target_groups) == 1:
        return service.target_groups[0]
    return None


def check(spec: Spec) -> Iterator[Problem]:
    """Each service's request count policy has exactly one of its target groups to count."""
    for name, service in spec.services.items():
        scaling = service.autoscaling
        if scaling is None:
            continue
        at = ("services", name, "autoscaling")
        groups = service.target_groups
        if scaling.target_requests_per_target is None:
            if scaling.target_group is not None:
                yield Problem(
                    (*at, "target_group"),
                    "target_group names the target group whose requests "
                    "target_requests_per_target counts, and that is not set",
                    hint="set target_requests_per_target, or remove target_group",
                )
            continue
        if not groups:
            yield Problem(
                (*at, "target_requests_per_target"),
                f"target_requests_per_target tracks the requests of a target group "
                f"(ALBRequestCountPerTarget), and service {name!r} registers in none",
                hint=f"put the service in a target group (services.{name}.target_groups), "
                "or scale on target_cpu_utilization instead",
            )
        elif scaling.target_group is None and len(groups) > 1:
            yield Problem(
                (*at, "target_requests_per_target"),
                f"service {name!r} registers in target groups {', '.join(groups)}; "
                "target_requests_per_target counts the requests of one of them",
                hint=f"name it in autoscaling, e.g. target_group: {groups[0]}",
            )
        elif scaling.target_group is not None and scaling.target_group not in groups:
            yield Problem(
                (*at, "target_group"),
                f"service {name!r} does not register in target group "
                f"{scaling.target_group!r}, so its tasks take none of that group's requests",
                hint=f"use one of the service's target_groups: {', '.join(groups)}",
            )
        elif (counted := request_target_group(service)) is not None:
            forwarding = forwarding_load_balancers(spec, counted)
            if len(forwarding) != 1:
                said = ", ".join(forwarding) if forwarding else "none"
                yield Problem(
                    (*at, "target_requests_per_target"),
                    f"ALBRequestCountPerTarget counts the requests one load balancer forwards "
                    f"to target group {counted!r}, and load balancers forwarding to it: {said}",
                    hint="forward to the group from one load balancer's listeners or rules",
                )
