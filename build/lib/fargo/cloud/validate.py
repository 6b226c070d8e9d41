"""What a valid spec may still ask that the cloud cannot do, as located problems.

`synthesize` calls `check` first, so a user hears every problem at once, in the same
``file:field: message (hint)`` form as the spec's own errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from fargo.spec.errors import Problem, SpecError
from fargo.spec.model import Spec


@dataclass
class CloudSpecError(SpecError):
    """The spec is valid, but asks for something the cloud rendering cannot do."""

    problems: list[Problem] = field(default_factory=list)
    path: str = "fargo.yaml"

    def __str__(self) -> str:
        count = len(self.problems)
        head = f"{self.path}: {count} problem{'s' if count != 1 else ''} for the cloud"
        return "\n".join([head, *(f"  {p.render(self.path)}" for p in self.problems)])


def check(spec: Spec) -> list[Problem]:
    return [*_certificates(spec), *_target_groups(spec)]


def ensure_deployable(spec: Spec) -> None:
    problems = check(spec)
    if problems:
        raise CloudSpecError(problems)


def _certificates(spec: Spec) -> Iterator[Problem]:
    for name, lb in spec.load_balancers.items():
        cert = lb.certificate
        if cert is not None and cert.arn is None and cert.hosted_zone is None:
            yield Problem(
                ("load_balancers", name, "certificate"),
                f"ACM cannot validate {cert.domain!r} without a Route 53 hosted zone",
                hint="add hosted_zone (the zone's name) for DNS validation, "
                "or arn of an existing ACM certificate",
            )


def _target_groups(spec: Spec) -> Iterator[Problem]:
    """ECS can only register tasks in a target group that one load balancer forwards to."""
    balancers: dict[str, set[str]] = {name: set() for name in spec.target_groups}
    for lb_name, lb in spec.load_balancers.items():
        for listener in lb.listeners:
            actions = [listener.default_action, *(rule.action for rule in listener.rules)]
            for action in actions:
                for weighted in action.weighted_target_groups():
                    balancers.setdefault(weighted.target_group, set()).add(lb_name)
    for name, users in balancers.items():
        if len(users) > 1:
            yield Problem(
                ("target_groups", name),
                f"target group {name!r} is forwarded to by load balancers "
                f"{', '.join(sorted(users))}; an ALB target group belongs to one load balancer",
                hint="give each load balancer its own target group",
            )
    for service_name, service in spec.services.items():
        for index, group in enumerate(service.target_groups):
            if not balancers.get(group):
                yield Problem(
                    ("services", service_name, "target_groups", index),
                    f"no listener forwards to target group {group!r}, so ECS cannot register "
                    "the service's tasks in it",
                    hint="forward to it from a listener's default action or a rule",
                )
