"""What the cloud refuses in a spec the twin can still run, as located problems.

`fargo validate`, `synth` and `deploy` report these as errors, with the spec's own
(`fargo.spec.loader.check_spec` with ``world="cloud"``); `fargo up` runs the spec and
prints them as warnings. `fargo.cloud.synth.synthesize` refuses them too
(`ensure_deployable`), for callers that never went through the loader.

No AWS CDK here: `fargo validate` stays fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from fargo.spec import domains, egress
from fargo.spec.errors import Problem, SpecError
from fargo.spec.model import Spec


@dataclass
class CloudSpecError(SpecError):
    """The spec is valid, but asks for something the cloud cannot do.

    ``path`` names the spec file when the caller knows it.
    """

    problems: list[Problem] = field(default_factory=list)
    path: Path | None = None

    def __str__(self) -> str:
        count = len(self.problems)
        head = (
            f"{self.path or 'the spec'}: {count} problem{'s' if count != 1 else ''} for the cloud"
        )
        return "\n".join([head, *(f"  {p.render(self.path)}" for p in self.problems)])


def check(spec: Spec) -> list[Problem]:
    """Every problem only the cloud has with ``spec`` (not located: the loader does that)."""
    return [*_egress(spec), *_certificates(spec), *_target_groups(spec)]


def ensure_deployable(spec: Spec, path: Path | None = None) -> None:
    """Raise `CloudSpecError` if the cloud cannot deploy ``spec``."""
    problems = check(spec)
    if problems:
        raise CloudSpecError(problems, path)


def _egress(spec: Spec) -> Iterator[Problem]:
    network = spec.network
    unreachable = egress.unreachable_from_private_subnets(network)
    if unreachable and not network.vpc_endpoints:
        needed = ", ".join(egress.TASK_LAUNCH_ENDPOINTS)
        yield Problem(
            ("network", "nat_gateways"),
            "tasks run in the private subnets, and without a NAT gateway they cannot reach "
            f"{_enumerate(unreachable)}: ECS could not pull their images "
            "(CannotPullContainerError) nor send their logs",
            hint="keep at least one NAT gateway (nat_gateways: 1), or declare the VPC "
            f"endpoints tasks start with (vpc_endpoints: [{needed}])",
        )
    elif unreachable:
        missing = egress.missing_for_launch(network)
        yield Problem(
            ("network", "vpc_endpoints"),
            f"without a NAT gateway, tasks reach AWS only through these endpoints, and "
            f"{_enumerate(missing, 'and')} {'is' if len(missing) == 1 else 'are'} missing: a task "
            f"could not reach {_enumerate(unreachable)}, so ECS could not start it "
            "(CannotPullContainerError, or no log stream)",
            hint=f"add {', '.join(missing)} to vpc_endpoints, or keep a NAT gateway "
            "(nat_gateways: 1)",
        )
    if egress.reaches_internet(network):
        return
    yield from _secret_endpoints(spec)
    if spec.tracing == "xray" and "xray" not in spec.network.vpc_endpoints:
        yield Problem(
            ("tracing",),
            "the X-Ray daemon in each task sends traces to the X-Ray API, which tasks "
            "without a NAT gateway reach only through an xray endpoint; vpc_endpoints "
            "lacks it, so every trace would be lost",
            hint="add xray to network.vpc_endpoints, keep a NAT gateway (nat_gateways: 1), "
            "or turn tracing off",
        )
    for name, service in spec.services.items():
        for index, callee in enumerate(service.calls):
            balancer = spec.load_balancers.get(callee)
            if balancer is not None and balancer.scheme == "internet-facing":
                yield Problem(
                    ("services", name, "calls", index),
                    f"{name} calls the internet-facing load balancer {callee!r}, whose "
                    "addresses are public: without a NAT gateway the call cannot leave the "
                    "private subnets",
                    hint="call an internal load balancer or the service itself, or keep a "
                    "NAT gateway (nat_gateways: 1)",
                )


def _secret_endpoints(spec: Spec) -> Iterator[Problem]:
    """Without a NAT gateway, ECS reads a task's secrets through the SSM, Secrets Manager
    (and KMS, for a customer managed key) endpoints before the task starts."""
    endpoints = set(spec.network.vpc_endpoints)
    for name, service in spec.services.items():
        for key, secret in service.secrets.items():
            needs = {
                "ssm": secret.ssm_parameter is not None,
                "secretsmanager": secret.secrets_manager is not None,
                "kms": secret.kms_key is not None,
            }
            missing = tuple(e for e, needed in needs.items() if needed and e not in endpoints)
            if missing:
                yield Problem(
                    ("services", name, "secrets", key),
                    f"without a NAT gateway, ECS reads this secret through the "
                    f"{_enumerate(missing, 'and')} endpoint{'s' if len(missing) > 1 else ''}, "
                    "which vpc_endpoints lacks: the task could not start "
                    "(ResourceInitializationError: unable to pull secrets)",
                    hint=f"add {', '.join(missing)} to network.vpc_endpoints, or keep a NAT "
                    "gateway (nat_gateways: 1)",
                )


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
        if cert is None or cert.arn is not None or cert.hosted_zone is None:
            continue
        for index, san in enumerate(cert.subject_alternative_names):
            if not domains.within(san.removeprefix("*."), cert.hosted_zone):
                yield Problem(
                    ("load_balancers", name, "certificate", "subject_alternative_names", index),
                    f"{san!r} is outside hosted_zone {cert.hosted_zone!r}: ACM validates "
                    "every name of the certificate through that zone, and could not "
                    "validate this one (the deploy would wait for it until it timed out)",
                    hint=f"use names under {cert.hosted_zone}, or an existing ACM "
                    "certificate's arn",
                )


def _target_groups(spec: Spec) -> Iterator[Problem]:
    """ECS can only register tasks in a target group that one load balancer forwards to."""
    balancers: dict[str, set[str]] = {name: set() for name in spec.target_groups}
    for lb_name, lb in spec.load_balancers.items():
        for group in lb.forwarded_target_groups():
            if group in balancers:  # an unknown name is the spec's own error (`checks`)
                balancers[group].add(lb_name)
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
            if group in balancers and not balancers[group]:
                yield Problem(
                    ("services", service_name, "target_groups", index),
                    f"no listener forwards to target group {group!r}, so ECS cannot register "
                    "the service's tasks in it",
                    hint="forward to it from a listener's default action or a rule",
                )


def _enumerate(items: tuple[str, ...], conjunction: str = "or") -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {conjunction} {items[-1]}"
