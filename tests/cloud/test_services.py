"""ECS services on Fargate: task size, container hardening, roles, placement, deployment."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import assertions

from fargo.cloud.synth import SynthResult

SERVICES = ("frontend", "backend-public", "backend-private", "backend-private-with-alb")


def resources(result: SynthResult, kind: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in result.template("app")["Resources"].items()
        if resource["Type"] == kind
    }


def task_definitions(result: SynthResult) -> dict[str, dict[str, Any]]:
    """Container name (= spec service name) → task definition properties."""
    found = {}
    for resource in resources(result, "AWS::ECS::TaskDefinition").values():
        container = resource["Properties"]["ContainerDefinitions"][0]  # then any sidecar
        found[container["Name"]] = resource["Properties"]
    return found


def ecs_services(result: SynthResult) -> dict[str, dict[str, Any]]:
    return {
        r["Metadata"]["fargo"]["service"]: r["Properties"]
        for r in resources(result, "AWS::ECS::Service").values()
    }


def test_four_fargate_services_one_task_definition_each(reference: SynthResult) -> None:
    assert sorted(ecs_services(reference)) == sorted(SERVICES)
    assert sorted(task_definitions(reference)) == sorted(SERVICES)
    for name, service in ecs_services(reference).items():
        spot = name in ("backend-private", "backend-private-with-alb")  # capacity: {spot: 100}
        assert service.get("LaunchType") == (None if spot else "FARGATE")
        assert service["PlatformVersion"] == "LATEST"


def test_spot_services_keep_their_base_on_demand(reference: SynthResult) -> None:
    services = ecs_services(reference)
    assert services["backend-private"]["CapacityProviderStrategy"] == [
        {"CapacityProvider": "FARGATE", "Base": 1, "Weight": 0},
        {"CapacityProvider": "FARGATE_SPOT", "Weight": 100},
    ]
    assert "CapacityProviderStrategy" not in services["frontend"]
    (association,) = [
        r["Properties"]
        for r in reference.template("app")["Resources"].values()
        if r["Type"] == "AWS::ECS::ClusterCapacityProviderAssociations"
    ]
    assert association["CapacityProviders"] == ["FARGATE", "FARGATE_SPOT"]
    resources = reference.template("app")["Resources"]
    (association_id,) = [
        i
        for i, r in resources.items()
        if r["Type"] == "AWS::ECS::ClusterCapacityProviderAssociations"
    ]
    spot_service = next(
        r for r in resources.values()
        if r["Type"] == "AWS::ECS::Service"
        and r["Metadata"]["fargo"]["service"] == "backend-private"
    )  # fmt: skip
    assert association_id in spot_service["DependsOn"]  # created after the providers


def test_tasks_have_256_cpu_units_and_512_mib_on_their_architecture(
    reference: SynthResult,
) -> None:
    for task in task_definitions(reference).values():
        assert (task["Cpu"], task["Memory"]) == ("256", "512")
        assert task["RequiresCompatibilities"] == ["FARGATE"]
        assert task["NetworkMode"] == "awsvpc"
        assert task["RuntimePlatform"] == {
            "CpuArchitecture": "ARM64",
            "OperatingSystemFamily": "LINUX",
        }


def test_desired_counts_from_the_spec_except_where_autoscaling_owns_it(
    reference: SynthResult,
) -> None:
    counts = {name: s.get("DesiredCount") for name, s in ecs_services(reference).items()}
    assert counts == {
        "frontend": 1,
        "backend-public": 1,
        "backend-private": 2,
        "backend-private-with-alb": None,  # a deploy must not reset what scaling did
    }


def test_container_ports_from_the_spec(reference: SynthResult) -> None:
    ports = {
        name: task["ContainerDefinitions"][0]["PortMappings"]
        for name, task in task_definitions(reference).items()
    }
    assert {name: [m["ContainerPort"] for m in maps] for name, maps in ports.items()} == {
        "frontend": [80],
        "backend-public": [8080],
        "backend-private": [8090],
        "backend-private-with-alb": [8090],
    }


def test_backend_private_image_runs_as_two_ecs_services(reference: SynthResult) -> None:
    tasks = task_definitions(reference)
    images = {name: str(task["ContainerDefinitions"][0]["Image"]) for name, task in tasks.items()}
    assert images["backend-private"] == images["backend-private-with-alb"]
    assert "/fargo-demo/backend-private:" in images["backend-private"]  # looked up by name
    assert len(set(images.values())) == 3


def test_image_is_pulled_at_the_given_tag(reference: SynthResult) -> None:
    for task in task_definitions(reference).values():
        image = task["ContainerDefinitions"][0]["Image"]
        assert image["Fn::Join"][1][-1].endswith(":abc123")


def test_read_only_root_file_system_and_non_root_user(reference: SynthResult) -> None:
    for task in task_definitions(reference).values():
        container = task["ContainerDefinitions"][0]
        assert container["ReadonlyRootFilesystem"] is True
        assert container["User"] == "10001:10001"
    root = Path(__file__).resolve().parents[2]
    for image in reference.spec.images.values():  # the same user as every Dockerfile's USER
        dockerfile = (root / image.context / image.dockerfile).read_text()
        assert "\nUSER 10001:10001\n" in dockerfile
        assert container["MountPoints"] == [
            {"ContainerPath": "/tmp", "ReadOnly": False, "SourceVolume": "scratch"}
        ]
        assert task["Volumes"] == [{"Name": "scratch"}]


def test_port_80_is_bindable_by_the_non_root_user(reference: SynthResult) -> None:
    tasks = task_definitions(reference)
    assert tasks["frontend"]["ContainerDefinitions"][0]["SystemControls"] == [
        {"Namespace": "net.ipv4.ip_unprivileged_port_start", "Value": "80"}
    ]
    assert "SystemControls" not in tasks["backend-public"]["ContainerDefinitions"][0]


def test_awslogs_to_a_log_group_per_service_with_retention(reference: SynthResult) -> None:
    groups = resources(reference, "AWS::Logs::LogGroup")
    assert len(groups) == 4
    assert {g["Properties"]["RetentionInDays"] for g in groups.values()} == {30}
    for name, task in task_definitions(reference).items():
        logging = task["ContainerDefinitions"][0]["LogConfiguration"]
        assert logging["LogDriver"] == "awslogs"
        assert logging["Options"]["awslogs-stream-prefix"] == name
        assert logging["Options"]["awslogs-group"]["Ref"] in groups


def test_container_health_check_gets_the_port_with_python(reference: SynthResult) -> None:
    check = task_definitions(reference)["backend-public"]["ContainerDefinitions"][0]["HealthCheck"]
    assert check["Command"][:3] == ["CMD", "python3", "-c"]
    assert "urllib.request.urlopen('http://127.0.0.1:8080/'" in check["Command"][3]
    assert (check["Interval"], check["Timeout"], check["Retries"], check["StartPeriod"]) == (
        30,
        5,
        3,
        10,
    )


def test_a_command_health_check_is_the_task_definitions_as_the_spec_gives_it(
    shop: SynthResult,
) -> None:
    check = task_definitions(shop)["worker"]["ContainerDefinitions"][0]["HealthCheck"]
    assert check["Command"] == ["CMD-SHELL", "test -f /tmp/ready || exit 1"]
    assert (check["Interval"], check["Timeout"], check["Retries"]) == (20, 5, 3)


@pytest.fixture
def http_server() -> Iterator[int]:
    """A server answering 200 on / and 500 elsewhere; yields its port."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/" else 500)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("path", "healthy"), [("/", True), ("/broken", False), (None, False)])
def test_health_check_command_exits_zero_only_on_success(
    reference: SynthResult, http_server: int, path: str | None, healthy: bool
) -> None:
    check = task_definitions(reference)["backend-public"]["ContainerDefinitions"][0]["HealthCheck"]
    # None: a port nothing listens on (connection refused).
    target = f"127.0.0.1:{http_server}{path}" if path is not None else "127.0.0.1:9/"
    probe = check["Command"][3].replace("127.0.0.1:8080/", target)
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=30)
    assert (completed.returncode == 0) is healthy


def test_execution_and_task_roles_are_separate(reference: SynthResult) -> None:
    for task in task_definitions(reference).values():
        execution = task["ExecutionRoleArn"]["Fn::GetAtt"][0]
        task_role = task["TaskRoleArn"]["Fn::GetAtt"][0]
        assert execution != task_role
    roles = resources(reference, "AWS::IAM::Role")
    assert (
        len({t["ExecutionRoleArn"]["Fn::GetAtt"][0] for t in task_definitions(reference).values()})
        == 4
    )
    for role in roles.values():
        (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
        assert statement["Condition"]["StringEquals"] == {
            "aws:SourceAccount": {"Ref": "AWS::AccountId"}
        }


def test_execution_role_may_only_pull_its_image_and_write_its_logs(reference: SynthResult) -> None:
    policies = {
        logical_id: policy
        for logical_id, policy in resources(reference, "AWS::IAM::Policy").items()
        if "ExecutionRole" in policy["Properties"]["Roles"][0]["Ref"]
    }
    assert len(policies) == 4
    for policy in policies.values():
        actions = {
            (action, str(statement["Resource"]))
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
            for action in (
                statement["Action"]
                if isinstance(statement["Action"], list)
                else [statement["Action"]]
            )
        }
        assert {action for action, _ in actions} == {
            "ecr:BatchCheckLayerAvailability",
            "ecr:GetDownloadUrlForLayer",
            "ecr:BatchGetImage",
            "ecr:GetAuthorizationToken",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
        }
        wildcard = {action for action, resource in actions if resource == "*"}
        assert wildcard == {"ecr:GetAuthorizationToken"}


def test_task_roles_have_no_permissions_but_xray(reference: SynthResult) -> None:
    # The reference spec traces (tracing: xray): X-Ray's write actions, nothing else
    # (tests/cloud/test_tracing.py); without tracing a task role has no policy at all.
    task_roles = {t["TaskRoleArn"]["Fn::GetAtt"][0] for t in task_definitions(reference).values()}
    for policy in resources(reference, "AWS::IAM::Policy").values():
        if {r["Ref"] for r in policy["Properties"]["Roles"]} & task_roles:
            actions = {
                a
                for st in policy["Properties"]["PolicyDocument"]["Statement"]
                for a in st["Action"]
            }
            assert {a.split(":")[0] for a in actions} == {"xray"}
    for logical_id in task_roles:
        role = reference.template("app")["Resources"][logical_id]["Properties"]
        assert "Policies" not in role and "ManagedPolicyArns" not in role


def test_tasks_run_in_private_subnets_without_public_ips(reference: SynthResult) -> None:
    for service in ecs_services(reference).values():
        network = service["NetworkConfiguration"]["AwsvpcConfiguration"]
        assert network["AssignPublicIp"] == "DISABLED"
        assert all(
            "/network/private-subnet-" in subnet_parameter(reference, subnet)
            for subnet in network["Subnets"]
        )


def subnet_parameter(result: SynthResult, subnet: dict[str, str]) -> str:
    """The SSM parameter a subnet id comes from (the network stack writes it)."""
    return str(result.template("app")["Parameters"][subnet["Ref"]]["Default"])


def test_rolling_deploy_min_100_max_200_with_circuit_breaker(reference: SynthResult) -> None:
    for service in ecs_services(reference).values():
        deployment = service["DeploymentConfiguration"]
        assert deployment["MinimumHealthyPercent"] == 100
        assert deployment["MaximumPercent"] == 200
        assert deployment["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}


def test_services_register_in_their_target_groups(reference: SynthResult) -> None:
    template = reference.template("app")["Resources"]
    registered = {
        name: [
            (
                template[lb["TargetGroupArn"]["Ref"]]["Metadata"]["fargo"]["target_group"],
                lb["ContainerPort"],
            )
            for lb in service.get("LoadBalancers", [])
        ]
        for name, service in ecs_services(reference).items()
    }
    assert registered == {
        "frontend": [("frontend", 80)],
        "backend-public": [("backend-public", 8080)],
        "backend-private": [],
        "backend-private-with-alb": [("backend-private-with-alb", 8090)],
    }


def test_autoscaling_2_to_4_on_cpu_for_backend_private_with_alb(
    app_template: assertions.Template,
) -> None:
    app_template.resource_count_is("AWS::ApplicationAutoScaling::ScalableTarget", 1)
    app_template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {
            "MinCapacity": 2,
            "MaxCapacity": 4,
            "ScalableDimension": "ecs:service:DesiredCount",
            "ResourceId": {
                "Fn::Join": [
                    "",
                    [
                        "service/",
                        assertions.Match.any_value(),
                        "/",
                        {
                            "Fn::GetAtt": [
                                assertions.Match.string_like_regexp("BackendPrivateWithAlbService"),
                                "Name",
                            ]
                        },
                    ],
                ]
            },
        },
    )
    app_template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "ECSServiceAverageCPUUtilization"
                },
                "TargetValue": 70,
            },
        },
    )


def test_deployments_roll_back_on_target_5xx_or_unhealthy_targets(reference: SynthResult) -> None:
    resources = reference.template("app")["Resources"]
    alarms = {
        logical_id: r["Properties"]
        for logical_id, r in resources.items()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    for name, service in ecs_services(reference).items():
        config = service["DeploymentConfiguration"].get("Alarms")
        if name == "backend-private":  # in no target group: the circuit breaker alone
            assert config is None or config["Enable"] is False
            continue
        assert config["Enable"] is True and config["Rollback"] is True
        watched = [alarms[ref["Ref"]] for ref in config["AlarmNames"]]
        metrics = sorted(a["MetricName"] for a in watched)
        assert metrics == ["HTTPCode_Target_5XX_Count", "UnHealthyHostCount"], name
        for alarm in watched:
            assert alarm["Namespace"] == "AWS/ApplicationELB"
            assert alarm["TreatMissingData"] == "notBreaching"
            assert {d["Name"] for d in alarm["Dimensions"]} == {"LoadBalancer", "TargetGroup"}
