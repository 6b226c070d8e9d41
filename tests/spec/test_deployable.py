"""What only the cloud refuses (fargo.spec.deployable): errors for `fargo validate`, `synth`
and `deploy`, located like every spec error; warnings for the twin, which runs the spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from fargo.spec import Problem, SpecInvalid, check_spec, check_spec_text, load_spec, parse_spec
from fargo.spec.deployable import CloudSpecError, ensure_deployable
from fargo.spec.egress import TASK_LAUNCH_NEEDS, unreachable_from_private_subnets
from fargo.spec.loader import TWIN_RUNS_IT

NO_ZONE = "certificate: {domain: shop.example.com}"
ZONE = "certificate: {domain: shop.example.com, hosted_zone: example.com}"
NO_NAT = ("  availability_zones: 2\n", "  availability_zones: 2\n  nat_gateways: 0\n")


@pytest.fixture
def deployable(shop):
    """The spec tests' shop, with a certificate ACM can validate: the cloud takes it."""
    return shop.edit(NO_ZONE, ZONE)


def cloud_problems(spec_text) -> list[Problem]:
    with pytest.raises(SpecInvalid) as caught:
        check_spec_text(spec_text.text, spec_text.name, world="cloud")
    return caught.value.problems


def test_the_reference_spec_is_deployable_without_warnings(root: Path) -> None:
    report = check_spec(root / "fargo.yaml", world="cloud")

    assert report.warnings == ()
    ensure_deployable(report.spec)


def test_the_shop_is_deployable(deployable) -> None:
    report = check_spec_text(deployable.text, deployable.name, world="cloud")

    assert report.warnings == ()


def test_no_nat_gateway_is_refused_at_its_line_saying_why_and_what_to_do(deployable) -> None:
    bad = deployable.edit(*NO_NAT)

    [problem] = cloud_problems(bad)

    assert problem.render(bad.name) == (
        f"shop.yaml:{bad.at('nat_gateways')}: network.nat_gateways: tasks run in the private "
        "subnets, and without a NAT gateway they cannot reach ECR (the image manifest), "
        "S3 (the image layers) or CloudWatch Logs (the awslogs driver): ECS could not pull "
        "their images (CannotPullContainerError) nor send their logs (keep at least one NAT "
        "gateway (nat_gateways: 1), or declare the VPC endpoints tasks start with "
        "(vpc_endpoints: [ecr.api, ecr.dkr, s3, logs]))"
    )


def test_one_function_decides_whether_private_tasks_reach_aws(shop) -> None:
    with_nat = parse_spec(shop.text).network
    without = parse_spec(shop.edit(*NO_NAT).text).network

    assert unreachable_from_private_subnets(with_nat) == ()
    assert unreachable_from_private_subnets(without) == TASK_LAUNCH_NEEDS


def test_the_twin_runs_what_only_the_cloud_refuses_and_warns(shop) -> None:
    bad = shop.edit(*NO_NAT)  # and the certificate has no zone

    report = check_spec_text(bad.text, bad.name, world="twin")

    assert [w.field_path for w in report.warnings] == [
        "network.nat_gateways",
        "load_balancers.edge.certificate",
    ]
    for line in report.warning_lines():
        assert line.startswith("shop.yaml:") and ": warning: " in line
        assert line.endswith(f"; {TWIN_RUNS_IT})")
    assert report.spec.network.nat_gateways == 0


def test_a_certificate_acm_cannot_validate(shop) -> None:
    [problem] = cloud_problems(shop)

    assert problem.field_path == "load_balancers.edge.certificate"
    assert f"{problem.line}:{problem.column}" == shop.at("certificate:")
    assert (
        problem.message == "ACM cannot validate 'shop.example.com' without a Route 53 hosted zone"
    )
    assert "hosted_zone" in (problem.hint or "") and "arn" in (problem.hint or "")


def test_a_target_group_no_listener_forwards_to_cannot_take_tasks(deployable) -> None:
    bad = deployable.edit(
        "            action: {forward: api}", "            action: {forward: web}"
    )

    [problem] = cloud_problems(bad)

    assert problem.field_path == "services.api.target_groups[0]"
    assert f"{problem.line}:{problem.column}" == bad.at("api]\n    discovery")
    assert "no listener forwards to target group 'api'" in problem.message


def test_a_target_group_belongs_to_one_load_balancer(deployable) -> None:
    second = """load_balancers:
  inside:
    scheme: internal
    listeners: [{port: 8080, protocol: HTTP, default_action: {forward: web}}]
"""
    bad = deployable.edit("load_balancers:\n", second)

    [problem] = cloud_problems(bad)

    assert problem.field_path == "target_groups.web"
    assert f"{problem.line}:{problem.column}" == bad.at("web: {}")
    assert "load balancers edge, inside" in problem.message


def test_cloud_and_spec_errors_are_reported_together_in_file_order(shop) -> None:
    bad = shop.edit(*NO_NAT).edit("memory: 512", "memory: 4096")

    problems = cloud_problems(bad)

    assert [p.field_path for p in problems] == [
        "network.nat_gateways",
        "load_balancers.edge.certificate",
        "services.api.memory",
    ]


def test_synthesis_refuses_it_too_naming_the_file_when_known(shop) -> None:
    spec = parse_spec(shop.text)

    with pytest.raises(CloudSpecError) as unnamed:
        ensure_deployable(spec)
    with pytest.raises(CloudSpecError) as named:
        ensure_deployable(spec, Path("shop.yaml"))

    assert str(unnamed.value).splitlines() == [
        "the spec: 1 problem for the cloud",
        "  load_balancers.edge.certificate: ACM cannot validate 'shop.example.com' without a "
        "Route 53 hosted zone (add hosted_zone (the zone's name) for DNS validation, or arn of "
        "an existing ACM certificate)",
    ]
    assert str(named.value).startswith("shop.yaml: 1 problem for the cloud\n  shop.yaml: ")


def test_load_spec_refuses_only_what_every_world_refuses(tmp_path: Path, shop) -> None:
    path = tmp_path / "shop.yaml"
    path.write_text(shop.edit(*NO_NAT).text)

    assert load_spec(path).network.nat_gateways == 0
    with pytest.raises(SpecInvalid) as caught:
        check_spec(path, world="cloud")
    assert caught.value.path == path


def test_a_certificate_name_outside_its_hosted_zone_acm_cannot_validate(deployable) -> None:
    bad = deployable.edit(
        "hosted_zone: example.com}",
        "hosted_zone: example.com, subject_alternative_names: [api.example.com, shop.example.net]}",
    )

    [problem] = cloud_problems(bad)

    assert problem.field_path == "load_balancers.edge.certificate.subject_alternative_names[1]"
    assert f"{problem.line}:{problem.column}" == bad.at("shop.example.net")
    assert problem.message.startswith(
        "'shop.example.net' is outside hosted_zone 'example.com': ACM validates every name"
    )
