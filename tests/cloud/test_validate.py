"""What a valid spec may ask that the cloud cannot do is reported before synthesis."""

from __future__ import annotations

from fargo.cloud.validate import CloudSpecError, check
from fargo.spec import Spec, SpecError


def test_reference_spec_is_deployable(reference_spec: Spec) -> None:
    assert check(reference_spec) == []


def test_certificate_without_zone_or_arn_cannot_be_validated(reference_spec: Spec) -> None:
    spec = reference_spec.model_copy(deep=True)
    certificate = spec.load_balancers["public"].certificate
    assert certificate is not None
    certificate.hosted_zone = None
    (problem,) = check(spec)
    assert problem.field_path == "load_balancers.public.certificate"
    assert "hosted_zone" in (problem.hint or "") and "arn" in (problem.hint or "")


def test_cloud_errors_are_spec_errors_the_cli_already_prints(reference_spec: Spec) -> None:
    spec = reference_spec.model_copy(deep=True)
    spec.load_balancers["public"].listeners[0].rules = []  # backend-public: no listener
    spec.load_balancers["internal"].listeners[0].default_action.forward = "frontend"
    error = CloudSpecError(check(spec))
    assert isinstance(error, SpecError)
    lines = str(error).splitlines()
    assert lines[0].startswith("fargo.yaml: ") and "problems for the cloud" in lines[0]
    assert lines[1].strip().startswith("fargo.yaml: ")


def test_a_target_group_no_listener_forwards_to_cannot_take_tasks(reference_spec: Spec) -> None:
    spec = reference_spec.model_copy(deep=True)
    listener = spec.load_balancers["public"].listeners[0]
    listener.rules = []  # nothing forwards to backend-public any more
    (problem,) = check(spec)
    assert problem.field_path == "services.backend-public.target_groups[0]"
    assert "no listener forwards to target group 'backend-public'" in problem.message


def test_a_target_group_belongs_to_one_load_balancer(reference_spec: Spec) -> None:
    spec = reference_spec.model_copy(deep=True)
    internal = spec.load_balancers["internal"].listeners[0]
    internal.default_action = internal.default_action.model_copy(update={"forward": "frontend"})
    problems = check(spec)
    assert problems[0].field_path == "target_groups.frontend"
    assert "internal, public" in problems[0].message
