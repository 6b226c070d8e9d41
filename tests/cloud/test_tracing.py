"""X-Ray tracing in the cloud (spec ``tracing: xray``, the reference system): the daemon
as a sidecar inside each task's size, its address in the application's environment, and
X-Ray's actions on the task role only."""

from __future__ import annotations

from typing import Any

import pytest

from fargo.cloud.synth import SynthResult
from fargo.spec import Spec
from fargo.spec.defaults import XRAY_DAEMON_IMAGE

SERVICES = ("frontend", "backend-public", "backend-private", "backend-private-with-alb")
XRAY_ACTIONS = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "xray:GetSamplingStatisticSummaries",
}


def resources(result: SynthResult, kind: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in result.template("app")["Resources"].items()
        if resource["Type"] == kind
    }


def task_definitions(result: SynthResult) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["ContainerDefinitions"][0]["Name"]: r["Properties"]
        for r in resources(result, "AWS::ECS::TaskDefinition").values()
    }


def test_reference_spec_traces_with_xray(reference_spec: Spec) -> None:
    assert reference_spec.tracing == "xray"


def test_every_task_runs_the_daemon_inside_its_own_size(reference: SynthResult) -> None:
    for name, task in task_definitions(reference).items():
        app, daemon = task["ContainerDefinitions"]
        assert daemon["Name"] == "xray-daemon" and daemon["Image"] == XRAY_DAEMON_IMAGE
        assert daemon["Essential"] is False  # a crashed daemon loses traces, not the service
        assert daemon["PortMappings"] == [{"ContainerPort": 2000, "Protocol": "udp"}]
        assert daemon["ReadonlyRootFilesystem"] is True
        # The task's size is unchanged; the daemon reserves a small share of it.
        assert (task["Cpu"], task["Memory"]) == ("256", "512"), name
        assert daemon["Cpu"] + app.get("Cpu", 0) <= 256
        assert daemon["MemoryReservation"] <= 64
        assert daemon["LogConfiguration"]["Options"]["awslogs-stream-prefix"] == "xray"
        environment = {e["Name"]: e["Value"] for e in app["Environment"]}
        assert environment["AWS_XRAY_DAEMON_ADDRESS"] == "127.0.0.1:2000"
        assert environment["AWS_XRAY_TRACING_NAME"] == name


def _statements(result: SynthResult, role_id: str) -> list[dict[str, Any]]:
    found = []
    for policy in resources(result, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def test_xray_actions_on_the_task_role_only(reference: SynthResult) -> None:
    task_roles = {
        name: task["TaskRoleArn"]["Fn::GetAtt"][0]
        for name, task in task_definitions(reference).items()
    }
    execution_roles = {
        task["ExecutionRoleArn"]["Fn::GetAtt"][0] for task in task_definitions(reference).values()
    }
    for name, role_id in task_roles.items():
        (statement,) = _statements(reference, role_id)
        assert set(statement["Action"]) == XRAY_ACTIONS, name
        assert statement["Resource"] == "*" and statement["Effect"] == "Allow"
    for role_id in execution_roles:
        actions = [a for s in _statements(reference, role_id) for a in _as_list(s["Action"])]
        assert not [a for a in actions if a.startswith("xray:")]


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def test_tracing_off_adds_nothing(shop: SynthResult, shop_spec: Spec) -> None:
    assert shop_spec.tracing == "off"
    for task in task_definitions(shop).values():
        assert [c["Name"] for c in task["ContainerDefinitions"]] != ["xray-daemon"]
        assert len(task["ContainerDefinitions"]) == 1
        environment = {e["Name"] for e in task["ContainerDefinitions"][0].get("Environment", [])}
        assert "AWS_XRAY_DAEMON_ADDRESS" not in environment


def test_no_unacknowledged_nag_finding(reference: SynthResult) -> None:
    assert [f.render() for f in reference.nag_findings] == []


@pytest.mark.parametrize("endpoints", [["ecr.api", "ecr.dkr", "s3", "logs"]])
def test_without_nat_tracing_needs_the_xray_endpoint(
    reference_spec: Spec, endpoints: list[str]
) -> None:
    from fargo.spec.deployable import check

    spec = reference_spec.model_copy(deep=True)
    spec.network.nat_gateways = 0
    spec.network.vpc_endpoints = endpoints
    (problem,) = check(spec)
    assert problem.loc == ("tracing",) and "xray endpoint" in problem.message
    spec.network.vpc_endpoints = [*endpoints, "xray"]
    assert check(spec) == []
