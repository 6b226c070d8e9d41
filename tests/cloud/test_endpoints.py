"""VPC endpoints in the synthesized templates: the endpoints, their policies, and the tasks'
egress narrowed to them when there is no NAT gateway."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fargo.cloud.network_parameters import parameter_name
from fargo.cloud.synth import SynthResult, synthesize
from fargo.spec import Spec

ANYWHERE = "0.0.0.0/0"
HTTPS = 443


def resources(result: SynthResult, stack: str, kind: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in result.template(stack)["Resources"].items()
        if resource["Type"] == kind
    }


def endpoints_by_service(result: SynthResult) -> dict[str, dict[str, Any]]:
    """Endpoint service name (``com.amazonaws.us-east-1.ecr.dkr``) → its properties."""
    return {
        _resolved(r["Properties"]["ServiceName"], result.spec.region): r["Properties"]
        for r in resources(result, "network", "AWS::EC2::VPCEndpoint").values()
    }


def _resolved(value: str | dict[str, Any], region: str) -> str:
    """A gateway endpoint's name is ``Fn::Join`` with ``AWS::Region``: the stack's region."""
    if isinstance(value, str):
        return value
    _, parts = value["Fn::Join"]
    return "".join(region if part == {"Ref": "AWS::Region"} else part for part in parts)


def ssm_parameter(result: SynthResult, key: str) -> str:
    """The app stack's template parameter that reads one of the network's SSM parameters."""
    name = parameter_name(result.spec.name, key)
    (found,) = [
        logical_id
        for logical_id, parameter in result.template("app")["Parameters"].items()
        if parameter.get("Default") == name
    ]
    return found


def task_groups(result: SynthResult) -> dict[str, dict[str, Any]]:
    return {
        logical_id: r
        for logical_id, r in resources(result, "app", "AWS::EC2::SecurityGroup").items()
        if r["Properties"]["GroupDescription"].startswith("tasks of service ")
    }


def egress_of(result: SynthResult, group: str) -> list[dict[str, Any]]:
    """Every egress rule of a task group: inline ones and separate resources."""
    inline = task_groups(result)[group]["Properties"].get("SecurityGroupEgress", [])
    separate = [
        r["Properties"]
        for r in resources(result, "app", "AWS::EC2::SecurityGroupEgress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [group, "GroupId"]}
    ]
    return [*inline, *separate]


@pytest.fixture(scope="module")
def with_nat(reference_spec: Spec, tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    """The reference system keeping its NAT gateway, with two endpoints to save NAT data."""
    spec = reference_spec.model_copy(deep=True)
    spec.network.vpc_endpoints = ["s3", "logs"]
    return synthesize(spec, tmp_path_factory.mktemp("with-nat"), image_tags="n1")


def test_no_nat_gateway_and_no_address_for_one(endpoints: SynthResult) -> None:
    assert resources(endpoints, "network", "AWS::EC2::NatGateway") == {}
    assert resources(endpoints, "network", "AWS::EC2::EIP") == {}


def test_interface_endpoints_in_the_private_subnets_with_private_dns(
    endpoints: SynthResult,
) -> None:
    found = endpoints_by_service(endpoints)
    subnets = resources(endpoints, "network", "AWS::EC2::Subnet")
    private = [
        {"Ref": logical_id}
        for logical_id, s in subnets.items()
        if {"Key": "aws-cdk:subnet-type", "Value": "Isolated"} in s["Properties"]["Tags"]
    ]
    (group,) = [
        logical_id
        for logical_id, r in resources(endpoints, "network", "AWS::EC2::SecurityGroup").items()
        if r["Properties"]["GroupDescription"].startswith("VPC interface endpoints")
    ]
    assert sorted(found) == [
        f"com.amazonaws.us-east-1.{name}" for name in ("ecr.api", "ecr.dkr", "logs", "s3", "xray")
    ]
    for name in ("ecr.api", "ecr.dkr", "logs", "xray"):
        endpoint = found[f"com.amazonaws.us-east-1.{name}"]
        assert endpoint["VpcEndpointType"] == "Interface"
        assert endpoint["PrivateDnsEnabled"] is True
        assert sorted(endpoint["SubnetIds"], key=str) == sorted(private, key=str)
        assert endpoint["SecurityGroupIds"] == [{"Fn::GetAtt": [group, "GroupId"]}]
    assert len(private) == 2


def test_the_endpoints_group_admits_only_the_tasks_and_sends_nothing(
    endpoints: SynthResult,
) -> None:
    (group,) = [
        r["Properties"]
        for r in resources(endpoints, "network", "AWS::EC2::SecurityGroup").values()
        if r["Properties"]["GroupDescription"].startswith("VPC interface endpoints")
    ]
    assert "SecurityGroupIngress" not in group  # not the CDK's default: the whole VPC on 443
    assert [rule["CidrIp"] for rule in group["SecurityGroupEgress"]] == ["255.255.255.255/32"]
    endpoints_group = {"Ref": ssm_parameter(endpoints, "vpc-endpoints-security-group")}
    ingress = [
        r["Properties"]
        for r in resources(endpoints, "app", "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == endpoints_group
    ]
    sources = sorted(rule["SourceSecurityGroupId"]["Fn::GetAtt"][0] for rule in ingress)
    assert sources == sorted(task_groups(endpoints))
    assert {(rule["FromPort"], rule["ToPort"], rule["IpProtocol"]) for rule in ingress} == {
        (HTTPS, HTTPS, "tcp")
    }


def test_s3_is_a_gateway_on_the_private_route_tables_only(endpoints: SynthResult) -> None:
    s3 = endpoints_by_service(endpoints)["com.amazonaws.us-east-1.s3"]
    tables = resources(endpoints, "network", "AWS::EC2::RouteTable")
    private = sorted(logical_id for logical_id in tables if "private" in logical_id)
    assert s3["VpcEndpointType"] == "Gateway"
    assert sorted(ref["Ref"] for ref in s3["RouteTableIds"]) == private
    assert len(private) == 2


def test_endpoint_policies_let_through_image_pulls_of_this_account_only(
    endpoints: SynthResult,
) -> None:
    found = endpoints_by_service(endpoints)
    ecr = found["com.amazonaws.us-east-1.ecr.dkr"]["PolicyDocument"]["Statement"]
    pull, token = ecr
    assert pull["Action"] == [
        "ecr:BatchCheckLayerAvailability",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchGetImage",
    ]
    assert ":repository/*" in str(pull["Resource"]) and "AWS::AccountId" in str(pull["Resource"])
    assert (token["Action"], token["Resource"]) == ("ecr:GetAuthorizationToken", "*")
    (layers,) = found["com.amazonaws.us-east-1.s3"]["PolicyDocument"]["Statement"]
    assert layers["Action"] == "s3:GetObject"
    assert "-starport-layer-bucket/*" in str(layers["Resource"])
    assert "PolicyDocument" not in found["com.amazonaws.us-east-1.logs"]  # AWS's default


def test_without_nat_tasks_send_https_only_to_the_endpoints_and_s3(
    endpoints: SynthResult,
) -> None:
    endpoints_group = {"Ref": ssm_parameter(endpoints, "vpc-endpoints-security-group")}
    prefix_list = {"Ref": ssm_parameter(endpoints, "s3-prefix-list")}
    for group in task_groups(endpoints):
        rules = [r for r in egress_of(endpoints, group) if r.get("FromPort") == HTTPS]
        assert not [r for r in egress_of(endpoints, group) if r.get("CidrIp") == ANYWHERE]
        assert sorted(
            ("endpoints" if r.get("DestinationSecurityGroupId") == endpoints_group else "s3")
            for r in rules
            if r.get("DestinationSecurityGroupId") == endpoints_group
            or r.get("DestinationPrefixListId") == prefix_list
        ) == ["endpoints", "s3"]


def test_each_service_waits_for_its_endpoint_rules(endpoints: SynthResult) -> None:
    rules = {
        logical_id
        for kind in ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress")
        for logical_id, r in resources(endpoints, "app", kind).items()
        if "VPC endpoints" in r["Properties"].get("Description", "")
        or "VPC interface endpoints" in r["Properties"].get("Description", "")
        or "gateway endpoint" in r["Properties"].get("Description", "")
    }
    services = resources(endpoints, "app", "AWS::ECS::Service")
    assert len(rules) == 3 * len(services)
    for service in services.values():
        waits_for = set(service["DependsOn"]) & rules
        assert len(waits_for) == 3


def test_the_s3_prefix_list_is_looked_up_at_deploy_time_and_handed_over(
    endpoints: SynthResult,
) -> None:
    (lookup,) = resources(endpoints, "network", "Custom::AWS").values()
    assert "DescribeManagedPrefixLists" in str(lookup["Properties"]["Create"])
    assert "prefix-list-name" in str(lookup["Properties"]["Create"])
    (policy,) = [
        r["Properties"]["PolicyDocument"]["Statement"]
        for r in resources(endpoints, "network", "AWS::IAM::Policy").values()
        if "DescribeManagedPrefixLists" in str(r)
    ]
    assert policy == [
        {"Action": "ec2:DescribeManagedPrefixLists", "Effect": "Allow", "Resource": "*"}
    ]
    names = {
        r["Properties"]["Name"]
        for r in resources(endpoints, "network", "AWS::SSM::Parameter").values()
    }
    assert {
        "/fargo/fargo-demo/network/vpc-endpoints-security-group",
        "/fargo/fargo-demo/network/s3-prefix-list",
    } <= names


def test_with_a_nat_gateway_tasks_keep_https_anywhere_and_reach_the_endpoints(
    with_nat: SynthResult,
) -> None:
    assert len(resources(with_nat, "network", "AWS::EC2::NatGateway")) == 1
    assert resources(with_nat, "network", "Custom::AWS") == {}  # nothing narrowed: no lookup
    endpoints_group = {"Ref": ssm_parameter(with_nat, "vpc-endpoints-security-group")}
    ingress = [
        r
        for r in resources(with_nat, "app", "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == endpoints_group
    ]
    assert len(ingress) == len(task_groups(with_nat))
    for group in task_groups(with_nat):
        assert {"CidrIp": ANYWHERE, "IpProtocol": "tcp", "FromPort": HTTPS, "ToPort": HTTPS} in [
            {k: r[k] for k in ("CidrIp", "IpProtocol", "FromPort", "ToPort") if k in r}
            for r in egress_of(with_nat, group)
        ]
    found = endpoints_by_service(with_nat)
    assert sorted(found) == ["com.amazonaws.us-east-1.logs", "com.amazonaws.us-east-1.s3"]


def test_the_reference_system_has_no_endpoint(reference: SynthResult) -> None:
    assert resources(reference, "network", "AWS::EC2::VPCEndpoint") == {}
    assert resources(reference, "network", "Custom::AWS") == {}


def test_synth_refuses_a_spec_missing_an_endpoint(endpoints_spec: Spec, tmp_path: Path) -> None:
    from fargo.spec.deployable import CloudSpecError

    spec = endpoints_spec.model_copy(deep=True)
    spec.network.vpc_endpoints = ["ecr.api", "ecr.dkr", "s3"]
    with pytest.raises(CloudSpecError, match="logs is missing"):
        synthesize(spec, tmp_path, image_tags="x")
