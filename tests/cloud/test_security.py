"""Security groups: tasks reachable only from their load balancer or their callers."""

from __future__ import annotations

from typing import Any

from fargo.cloud.synth import SynthResult

ANYWHERE = "0.0.0.0/0"


def groups(result: SynthResult) -> dict[str, str]:
    """Security group logical id → a short name: the service or load balancer it belongs to."""
    names = {}
    for logical_id, resource in result.template("app")["Resources"].items():
        if resource["Type"] == "AWS::EC2::SecurityGroup":
            description = resource["Properties"]["GroupDescription"]
            names[logical_id] = (
                description.removeprefix("tasks of service ")
                .removeprefix("load balancer ")
                .split(" (")[0]
            )
    return names


def ingress(result: SynthResult) -> set[tuple[str, str, int]]:
    """Every ingress rule as (to, from, port); from is a group's short name or a CIDR."""
    names = groups(result)
    rules: set[tuple[str, str, int]] = set()
    resources = result.template("app")["Resources"]

    def source(rule: dict[str, Any]) -> str:
        if "SourceSecurityGroupId" in rule:
            return names[rule["SourceSecurityGroupId"]["Fn::GetAtt"][0]]
        return str(rule["CidrIp"])

    for logical_id, resource in resources.items():
        props = resource["Properties"]
        if resource["Type"] == "AWS::EC2::SecurityGroup":
            for rule in props.get("SecurityGroupIngress", []):
                assert rule["FromPort"] == rule["ToPort"]
                rules.add((names[logical_id], source(rule), rule["FromPort"]))
        elif resource["Type"] == "AWS::EC2::SecurityGroupIngress":
            assert props["FromPort"] == props["ToPort"]
            rules.add((names[props["GroupId"]["Fn::GetAtt"][0]], source(props), props["FromPort"]))
    return rules


def egress(result: SynthResult) -> set[tuple[str, str, int]]:
    names = groups(result)
    rules: set[tuple[str, str, int]] = set()
    for logical_id, resource in result.template("app")["Resources"].items():
        props = resource["Properties"]
        if resource["Type"] == "AWS::EC2::SecurityGroup":
            for rule in props.get("SecurityGroupEgress", []):
                if rule["CidrIp"] != "255.255.255.255/32":
                    rules.add((names[logical_id], rule["CidrIp"], rule["FromPort"]))
        elif resource["Type"] == "AWS::EC2::SecurityGroupEgress":
            to = names[props["DestinationSecurityGroupId"]["Fn::GetAtt"][0]]
            rules.add((names[props["GroupId"]["Fn::GetAtt"][0]], to, props["FromPort"]))
    return rules


def test_a_security_group_per_service_and_load_balancer(reference: SynthResult) -> None:
    assert sorted(groups(reference).values()) == sorted(
        [
            "public",
            "internal",
            "frontend",
            "backend-public",
            "backend-private",
            "backend-private-with-alb",
        ]
    )


def test_ingress_is_exactly_the_paths_of_the_architecture(reference: SynthResult) -> None:
    assert ingress(reference) == {
        # the public ALB: HTTPS and the redirecting HTTP from the internet
        ("public", ANYWHERE, 443),
        ("public", ANYWHERE, 80),
        # tasks from their load balancer, on the container port
        ("frontend", "public", 80),
        ("backend-public", "public", 8080),
        ("backend-private-with-alb", "internal", 8090),
        # the callers of backend-public's `calls`
        ("backend-private", "backend-public", 8090),
        ("internal", "backend-public", 8090),
    }


def test_egress_is_exactly_what_is_needed(reference: SynthResult) -> None:
    assert egress(reference) == {
        # load balancers to their targets only
        ("public", "frontend", 80),
        ("public", "backend-public", 8080),
        ("internal", "backend-private-with-alb", 8090),
        # every task: HTTPS for image pulls and AWS APIs, through the NAT gateway
        *(
            (service, ANYWHERE, 443)
            for service in (
                "frontend",
                "backend-public",
                "backend-private",
                "backend-private-with-alb",
            )
        ),
        # frontend calls nothing (the browser calls the API): no other egress
        # backend-public calls backend-private (discovery) and the internal load balancer
        ("backend-public", "backend-private", 8090),
        ("backend-public", "internal", 8090),
    }


def test_no_group_keeps_the_default_allow_all_egress(reference: SynthResult) -> None:
    for resource in reference.template("app")["Resources"].values():
        if resource["Type"] == "AWS::EC2::SecurityGroup":
            rules = resource["Properties"].get("SecurityGroupEgress")
            assert rules, "a group without inline egress gets EC2's allow-all rule"
            assert all(rule["IpProtocol"] != "-1" for rule in rules)


def test_every_rule_says_why(reference: SynthResult) -> None:
    for resource in reference.template("app")["Resources"].values():
        props = resource["Properties"]
        if resource["Type"] == "AWS::EC2::SecurityGroup":
            for rule in props.get("SecurityGroupIngress", []) + props.get(
                "SecurityGroupEgress", []
            ):
                assert rule.get("Description")
        elif resource["Type"] in (
            "AWS::EC2::SecurityGroupIngress",
            "AWS::EC2::SecurityGroupEgress",
        ):
            assert props.get("Description")


def test_calls_open_paths_in_another_spec(shop: SynthResult) -> None:
    assert ingress(shop) == {
        ("edge", ANYWHERE, 443),
        ("edge", ANYWHERE, 80),
        ("web", "edge", 3000),
        ("api-blue", "edge", 8000),
        ("api-green", "edge", 8000),
        ("api-blue", "web", 8000),  # web calls api-blue
        ("worker", "api-blue", 9000),  # api-blue calls worker
    }
