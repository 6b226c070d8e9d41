"""ECS Service Connect in the template (fargo.cloud.service_connect), from
tests/e2e/service_connect.yaml: the spec the twin's e2e test runs too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_cdk import assertions
from tests.cloud.conftest import stack_template

from fargo.cloud.checks import CheckReport, check_report
from fargo.cloud.synth import SynthResult, synthesize
from fargo.spec import Spec, load_spec, parse_spec

SPEC = Path(__file__).resolve().parents[1] / "e2e" / "service_connect.yaml"


@pytest.fixture(scope="module")
def connect_spec() -> Spec:
    return load_spec(SPEC)


@pytest.fixture(scope="module")
def connected(connect_spec: Spec, tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    return synthesize(connect_spec, tmp_path_factory.mktemp("connect"), image_tags="c0ffee")


@pytest.fixture(scope="module")
def template(connected: SynthResult) -> assertions.Template:
    return stack_template(connected, "app")


def ecs_service(template: assertions.Template, name: str) -> tuple[str, dict[str, Any]]:
    """The logical id and resource of the ECS service fargo made for spec service ``name``."""
    [(logical_id, found)] = [
        (logical_id, resource)
        for logical_id, resource in template.find_resources("AWS::ECS::Service").items()
        if resource["Metadata"]["fargo"]["service"] == name
    ]
    return logical_id, found


def container(template: assertions.Template, name: str) -> dict[str, Any]:
    for definition in template.find_resources("AWS::ECS::TaskDefinition").values():
        found = definition["Properties"]["ContainerDefinitions"][0]  # then any sidecar
        if found["Name"] == name:
            return dict(found)
    raise AssertionError(f"no container {name}")


def test_an_http_namespace_is_the_clusters_service_connect_default(
    template: assertions.Template,
) -> None:
    [namespace_id] = template.find_resources("AWS::ServiceDiscovery::HttpNamespace")
    template.has_resource_properties(
        "AWS::ServiceDiscovery::HttpNamespace", {"Name": "connect.internal"}
    )
    template.has_resource_properties(
        "AWS::ECS::Cluster",
        {"ServiceConnectDefaults": {"Namespace": {"Fn::GetAtt": [namespace_id, "Arn"]}}},
    )
    # Service Connect makes its own Cloud Map services: no DNS namespace, zone or registry.
    template.resource_count_is("AWS::ServiceDiscovery::PrivateDnsNamespace", 0)
    template.resource_count_is("AWS::ServiceDiscovery::Service", 0)


def test_the_server_serves_its_client_alias_on_its_named_http_port(
    template: assertions.Template,
) -> None:
    [namespace_id] = template.find_resources("AWS::ServiceDiscovery::HttpNamespace")
    _, server = ecs_service(template, "backend-private")
    config = server["Properties"]["ServiceConnectConfiguration"]

    assert config["Enabled"] is True
    assert config["Namespace"] == {"Fn::GetAtt": [namespace_id, "Arn"]}
    assert config["Services"] == [
        {
            "PortName": "http",
            "DiscoveryName": "backend-private",
            "ClientAliases": [{"DnsName": "backend.internal", "Port": 8090}],
        }
    ]
    assert config["LogConfiguration"]["LogDriver"] == "awslogs"
    assert "ServiceRegistries" not in server["Properties"]
    assert container(template, "backend-private")["PortMappings"] == [
        {"ContainerPort": 8090, "Name": "http", "AppProtocol": "http", "Protocol": "tcp"}
    ]


def test_the_client_joins_the_namespace_after_the_server_and_calls_the_alias(
    template: assertions.Template,
) -> None:
    server_id, _ = ecs_service(template, "backend-private")
    _, client = ecs_service(template, "backend-public")
    config = client["Properties"]["ServiceConnectConfiguration"]

    assert config["Enabled"] is True and "Services" not in config
    # A task resolves only the endpoints that existed when it started.
    assert server_id in client["DependsOn"]
    environment = {
        e["Name"]: e["Value"] for e in container(template, "backend-public")["Environment"]
    }
    assert environment["PRIVATE_DISCOVERY_URL"] == "http://backend.internal:8090"
    # A client with no endpoint of its own declares no application protocol.
    assert "AppProtocol" not in container(template, "backend-public")["PortMappings"][0]


def test_the_caller_reaches_the_servers_container_port(template: assertions.Template) -> None:
    """The client's proxy connects to the server's proxy on the container port."""
    paths = [
        (r["Properties"]["FromPort"], r["Properties"]["ToPort"])
        for r in template.find_resources("AWS::EC2::SecurityGroupIngress").values()
        if "backend-public calls backend-private" in r["Properties"]["Description"]
    ]
    assert paths == [(8090, 8090)]


def test_the_circuit_breaker_and_alarms_still_guard_deployments(
    template: assertions.Template,
) -> None:
    _, client = ecs_service(template, "backend-public")
    _, server = ecs_service(template, "backend-private")
    for service in (client, server):
        assert service["Properties"]["DeploymentConfiguration"]["DeploymentCircuitBreaker"] == {
            "Enable": True,
            "Rollback": True,
        }
    assert client["Properties"]["DeploymentConfiguration"]["Alarms"]["Enable"] is True


def test_the_discovery_namespace_is_reused_when_the_spec_names_it(
    connect_spec: Spec, tmp_path: Path
) -> None:
    text = SPEC.read_text().replace(
        "    namespace: connect.internal  # a Cloud Map HTTP namespace: no Route 53 zone\n",
        "    namespace: connect.local\n\ndiscovery:\n  namespace: connect.local\n",
    )
    spec = parse_spec(text, SPEC)
    result = synthesize(spec, tmp_path, image_tags="c0ffee")
    template = stack_template(result, "app")

    [namespace_id] = template.find_resources("AWS::ServiceDiscovery::PrivateDnsNamespace")
    template.resource_count_is("AWS::ServiceDiscovery::HttpNamespace", 0)
    _, server = ecs_service(template, "backend-private")
    namespace = server["Properties"]["ServiceConnectConfiguration"]["Namespace"]
    assert namespace == {"Fn::GetAtt": [namespace_id, "Arn"]}


def test_no_unacknowledged_nag_finding(connected: SynthResult) -> None:
    assert [f.render() for f in connected.nag_findings] == []


@pytest.mark.slow  # cfn-lint and checkov take seconds per template
def test_cfn_lint_and_checkov_pass(connected: SynthResult) -> None:
    report: CheckReport = check_report(connected)
    assert [f.render() for f in report.findings] == []
    assert report.ran == ["cdk-nag", "cfn-lint", "checkov"]
