"""``network.vpc_endpoints``: known names, once each; without a NAT gateway, the endpoints a
task needs to start, and no call that would have to leave the VPC."""

from __future__ import annotations

import pytest

from fargo.spec import Problem, SpecInvalid, check_spec_text, parse_spec
from fargo.spec.egress import (
    TASK_LAUNCH_ENDPOINTS,
    endpoint_type,
    gateway_endpoints,
    interface_endpoints,
    missing_for_launch,
    unreachable_from_private_subnets,
)

ZONE = "certificate: {domain: shop.example.com, hosted_zone: example.com}"
NO_ZONE = "certificate: {domain: shop.example.com}"
ZONES = "  availability_zones: 2\n"


@pytest.fixture
def deployable(shop):
    return shop.edit(NO_ZONE, ZONE).edit(
        '    environment:\n      API_URL: "http://${lb:edge.dns_name}"\n', ""
    )


def with_network(spec_text, lines: str):
    return spec_text.edit(ZONES, ZONES + lines)


def cloud_problems(spec_text) -> list[Problem]:
    with pytest.raises(SpecInvalid) as caught:
        check_spec_text(spec_text.text, spec_text.name, world="cloud")
    return caught.value.problems


LAUNCH_AND_SECRETS = "[ecr.api, ecr.dkr, s3, logs, ssm, secretsmanager, kms]"


def test_no_nat_gateway_with_every_endpoint_a_task_needs_is_deployable(deployable) -> None:
    good = with_network(deployable, f"  nat_gateways: 0\n  vpc_endpoints: {LAUNCH_AND_SECRETS}\n")

    report = check_spec_text(good.text, good.name, world="cloud")

    assert report.warnings == ()
    network = report.spec.network
    assert interface_endpoints(network) == (
        "ecr.api",
        "ecr.dkr",
        "logs",
        "ssm",
        "secretsmanager",
        "kms",
    )
    assert gateway_endpoints(network) == ("s3",)
    assert unreachable_from_private_subnets(network) == ()


def test_endpoints_with_a_nat_gateway_are_fine_whichever_they_are(deployable) -> None:
    good = with_network(deployable, "  vpc_endpoints: [s3]\n")

    report = check_spec_text(good.text, good.name, world="cloud")

    assert report.spec.network.vpc_endpoints == ["s3"]
    assert missing_for_launch(report.spec.network) == ()


def test_a_missing_endpoint_is_named_at_the_list_with_what_it_is_for(deployable) -> None:
    bad = with_network(deployable, "  nat_gateways: 0\n  vpc_endpoints: [ecr.api, ecr.dkr]\n")

    [problem] = cloud_problems(bad)

    assert problem.render(bad.name) == (
        f"shop.yaml:{bad.at('vpc_endpoints')}: network.vpc_endpoints: without a NAT gateway, "
        "tasks reach AWS only through these endpoints, and s3 and logs are missing: a task "
        "could not reach S3 (the image layers: ECR keeps them in S3) or CloudWatch Logs (the "
        "awslogs driver), so ECS could not start it (CannotPullContainerError, or no log "
        "stream) (add s3, logs to vpc_endpoints, or keep a NAT gateway (nat_gateways: 1))"
    )


def test_one_missing_endpoint_alone(deployable) -> None:
    bad = with_network(deployable, "  nat_gateways: 0\n  vpc_endpoints: [ecr.dkr, s3, logs, kms]\n")

    [problem] = cloud_problems(bad)

    assert "and ecr.api is missing: a task could not reach ECR's API" in problem.message
    assert problem.hint == "add ecr.api to vpc_endpoints, or keep a NAT gateway (nat_gateways: 1)"


def test_without_a_nat_gateway_no_service_may_call_an_internet_facing_load_balancer(
    deployable,
) -> None:
    bad = with_network(
        deployable, "  nat_gateways: 0\n  vpc_endpoints: [ecr.api, ecr.dkr, s3, logs]\n"
    ).edit("    target_groups: [web]\n", "    target_groups: [web]\n    calls: [edge]\n")

    [problem] = cloud_problems(bad)

    assert problem.field_path == "services.web.calls[0]"
    assert f"{problem.line}:{problem.column}" == bad.at("edge]")
    assert "internet-facing load balancer 'edge'" in problem.message
    assert "without a NAT gateway the call cannot leave the private subnets" in problem.message


def test_the_twin_runs_a_spec_missing_endpoints_and_warns(deployable) -> None:
    bad = with_network(deployable, "  nat_gateways: 0\n  vpc_endpoints: [ecr.dkr]\n")

    report = check_spec_text(bad.text, bad.name, world="twin")

    assert [w.field_path for w in report.warnings] == ["network.vpc_endpoints"]


def test_an_unknown_endpoint_name_suggests_the_close_one(shop) -> None:
    bad = with_network(shop, "  vpc_endpoints: [ecr.dkr, ecr.dockr]\n")

    assert bad.rendered() == [
        f"shop.yaml:{bad.at('ecr.dockr')}: network.vpc_endpoints[1]: no VPC endpoint service "
        "named 'ecr.dockr' (did you mean 'ecr.dkr'?)"
    ]


def test_an_endpoint_listed_twice(shop) -> None:
    bad = with_network(shop, "  vpc_endpoints: [logs, s3, logs]\n")

    [problem] = bad.problems()

    assert problem.field_path == "network.vpc_endpoints[2]"
    assert problem.message == "VPC endpoint 'logs' is listed twice (first at index 0)"


def test_a_name_that_is_no_endpoint_name_at_all(shop) -> None:
    [problem] = with_network(shop, "  vpc_endpoints: [ECR Docker]\n").problems()

    assert problem.field_path == "network.vpc_endpoints[0]"
    assert "should match pattern" in problem.message


def test_s3_and_dynamodb_are_gateways_every_other_an_interface() -> None:
    assert [endpoint_type(n) for n in ("s3", "dynamodb", "ecr.dkr", "logs")] == [
        "Gateway",
        "Gateway",
        "Interface",
        "Interface",
    ]
    assert list(TASK_LAUNCH_ENDPOINTS) == ["ecr.api", "ecr.dkr", "s3", "logs"]


def test_the_default_is_no_endpoint(shop) -> None:
    assert parse_spec(shop.text).network.vpc_endpoints == []


SECRETS = """    secrets:
      SESSION_KEY: {ssm_parameter: /shop/session-key, local: {env: SHOP_SESSION_KEY}}
      DB_PASSWORD:
        secrets_manager: shop/db
        kms_key: arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab
        local: {env: SHOP_DB_PASSWORD}
"""


def test_without_a_nat_gateway_each_secret_names_the_endpoints_ecs_reads_it_through(
    deployable,
) -> None:
    launch = "  nat_gateways: 0\n  vpc_endpoints: [ecr.api, ecr.dkr, s3, logs]\n"
    spec = with_network(deployable, launch).edit(
        "    discovery: api.internal\n", "    discovery: api.internal\n" + SECRETS
    )

    problems = {p.loc: p for p in cloud_problems(spec)}

    session = problems[("services", "api", "secrets", "SESSION_KEY")]
    assert "through the ssm endpoint" in session.message
    assert session.hint is not None and session.hint.startswith("add ssm to network.vpc_endpoints")
    db = problems[("services", "api", "secrets", "DB_PASSWORD")]
    assert "through the secretsmanager and kms endpoints" in db.message
    assert "ResourceInitializationError" in db.message

    every = with_network(deployable, f"  nat_gateways: 0\n  vpc_endpoints: {LAUNCH_AND_SECRETS}\n")
    fine = every.edit("    discovery: api.internal\n", "    discovery: api.internal\n" + SECRETS)
    assert check_spec_text(fine.text, fine.name, world="cloud").warnings == ()
