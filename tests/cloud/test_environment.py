"""Symbolic references in service environments become CloudFormation values."""

from __future__ import annotations

from typing import Any

from fargo.cloud.synth import SynthResult


def environment(result: SynthResult, service: str) -> dict[str, Any]:
    for resource in result.template("app")["Resources"].values():
        if resource["Type"] == "AWS::ECS::TaskDefinition":
            container = resource["Properties"]["ContainerDefinitions"][0]  # then any sidecar
            if container["Name"] == service:
                return {e["Name"]: e["Value"] for e in container.get("Environment", [])}
    raise KeyError(service)


def test_internal_alb_reference_becomes_its_dns_name(reference: SynthResult) -> None:
    value = environment(reference, "backend-public")["PRIVATE_ALB_URL"]
    (internal,) = [
        logical_id
        for logical_id, r in reference.template("app")["Resources"].items()
        if r["Type"] == "AWS::ElasticLoadBalancingV2::LoadBalancer"
        and r["Properties"]["Scheme"] == "internal"
    ]
    assert value == {"Fn::Join": ["", ["http://", {"Fn::GetAtt": [internal, "DNSName"]}, ":8090"]]}


def test_no_hard_coded_internal_hostname(reference: SynthResult) -> None:
    assert "elb.amazonaws.com" not in str(environment(reference, "backend-public"))


def test_discovery_reference_becomes_the_name_in_the_namespace(reference: SynthResult) -> None:
    assert (
        environment(reference, "backend-public")["PRIVATE_DISCOVERY_URL"]
        == "http://private.backend.microservice.local:8090"
    )


def test_services_without_environment_get_only_their_keep_alive(reference: SynthResult) -> None:
    assert environment(reference, "backend-private") == {
        "HTTP_KEEP_ALIVE_TIMEOUT": "75",
        # tracing: xray (tests/cloud/test_tracing.py)
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
        "AWS_XRAY_TRACING_NAME": "backend-private",
    }


def test_every_task_gets_its_services_keep_alive(shop: SynthResult) -> None:
    assert environment(shop, "web")["HTTP_KEEP_ALIVE_TIMEOUT"] == "125"
    assert environment(shop, "worker")["HTTP_KEEP_ALIVE_TIMEOUT"] == "75"


def test_literal_values_stay_literal(shop: SynthResult) -> None:
    env = environment(shop, "web")
    assert env["MODE"] == "production"
    assert env["API_URL"] == "http://api.shop.internal:8000"
    assert env["EDGE_URL"]["Fn::Join"][1][0] == "https://"
