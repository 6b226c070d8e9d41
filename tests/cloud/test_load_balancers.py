"""The load balancers: placement, listeners, TLS, rules, attributes, DNS record."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import assertions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2

from fargo.cloud.load_balancers import LoadBalancer
from fargo.spec.defaults import TLS_POLICY
from fargo.spec.elb import LoadBalancer as LoadBalancerSpec


def load_balancer(template: assertions.Template, scheme: str) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (logical_id, resource)
        for logical_id, resource in template.find_resources(
            "AWS::ElasticLoadBalancingV2::LoadBalancer"
        ).items()
        if resource["Properties"]["Scheme"] == scheme
    ]
    return found


def listener(template: assertions.Template, port: int) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (logical_id, resource)
        for logical_id, resource in template.find_resources(
            "AWS::ElasticLoadBalancingV2::Listener"
        ).items()
        if resource["Properties"]["Port"] == port
    ]
    return found


def attributes(resource: dict[str, Any]) -> dict[str, Any]:
    return {a["Key"]: a["Value"] for a in resource["Properties"]["LoadBalancerAttributes"]}


def target_group_id(template: assertions.Template, name: str) -> str:
    (found,) = [
        logical_id
        for logical_id, resource in template.find_resources(
            "AWS::ElasticLoadBalancingV2::TargetGroup"
        ).items()
        if resource["Metadata"]["fargo"]["target_group"] == name
    ]
    return found


def test_two_load_balancers_public_and_internal(app_template: assertions.Template) -> None:
    app_template.resource_count_is("AWS::ElasticLoadBalancingV2::LoadBalancer", 2)
    load_balancer(app_template, "internet-facing")
    load_balancer(app_template, "internal")


def test_public_alb_sits_in_public_subnets_internal_in_private(
    app_template: assertions.Template,
) -> None:
    _, public = load_balancer(app_template, "internet-facing")
    _, internal = load_balancer(app_template, "internal")
    parameters = app_template.to_json()["Parameters"]

    def subnets(lb: dict[str, Any]) -> set[str]:  # the SSM parameters the ids come from
        names = [parameters[s["Ref"]]["Default"] for s in lb["Properties"]["Subnets"]]
        return {name.rsplit("/", 1)[1].rsplit("-", 1)[0] for name in names}

    assert subnets(public) == {"public-subnet"} and subnets(internal) == {"private-subnet"}
    assert len(public["Properties"]["Subnets"]) == len(internal["Properties"]["Subnets"]) == 2


def test_https_listener_443_with_certificate_and_tls13_policy(
    app_template: assertions.Template,
) -> None:
    _, https = listener(app_template, 443)
    props = https["Properties"]
    assert props["Protocol"] == "HTTPS"
    assert props["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06" == TLS_POLICY
    (certificate,) = props["Certificates"]
    assert certificate["CertificateArn"]["Ref"].startswith("PublicLoadBalancerCertificate")


def test_no_listener_uses_the_tls10_policy_of_the_original(
    app_template: assertions.Template,
) -> None:
    for resource in app_template.find_resources("AWS::ElasticLoadBalancingV2::Listener").values():
        assert resource["Properties"].get("SslPolicy") != "ELBSecurityPolicy-2016-08"


def test_https_default_action_forwards_to_frontend(app_template: assertions.Template) -> None:
    _, https = listener(app_template, 443)
    assert https["Properties"]["DefaultActions"] == [
        {"Type": "forward", "TargetGroupArn": {"Ref": target_group_id(app_template, "frontend")}}
    ]


def test_api_rule_priority_1_forwards_to_backend_public(app_template: assertions.Template) -> None:
    https_id, _ = listener(app_template, 443)
    app_template.resource_count_is("AWS::ElasticLoadBalancingV2::ListenerRule", 1)
    app_template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::ListenerRule",
        {
            "ListenerArn": {"Ref": https_id},
            "Priority": 1,
            "Conditions": [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/api/*"]}}],
            "Actions": [
                {
                    "Type": "forward",
                    "TargetGroupArn": {"Ref": target_group_id(app_template, "backend-public")},
                }
            ],
        },
    )


def test_http_80_redirects_301_to_https(app_template: assertions.Template) -> None:
    _, http = listener(app_template, 80)
    assert http["Properties"]["Protocol"] == "HTTP"
    (action,) = http["Properties"]["DefaultActions"]
    assert action["Type"] == "redirect"
    assert action["RedirectConfig"] == {
        "Protocol": "HTTPS",
        "Port": "443",
        "Host": "#{host}",
        "Path": "/#{path}",
        "Query": "#{query}",
        "StatusCode": "HTTP_301",
    }


def test_internal_listener_8090_forwards_to_backend_private_with_alb(
    app_template: assertions.Template,
) -> None:
    internal_id, _ = load_balancer(app_template, "internal")
    _, http = listener(app_template, 8090)
    assert http["Properties"]["LoadBalancerArn"] == {"Ref": internal_id}
    assert http["Properties"]["Protocol"] == "HTTP"
    assert http["Properties"]["DefaultActions"] == [
        {
            "Type": "forward",
            "TargetGroupArn": {"Ref": target_group_id(app_template, "backend-private-with-alb")},
        }
    ]


def test_invalid_header_fields_are_dropped(app_template: assertions.Template) -> None:
    for scheme in ("internet-facing", "internal"):
        _, resource = load_balancer(app_template, scheme)
        assert attributes(resource)["routing.http.drop_invalid_header_fields.enabled"] == "true"


def test_access_logs_go_to_the_bucket_under_a_prefix_per_load_balancer(
    app_template: assertions.Template,
) -> None:
    for scheme, prefix in (("internet-facing", "public"), ("internal", "internal")):
        _, resource = load_balancer(app_template, scheme)
        attrs = attributes(resource)
        assert attrs["access_logs.s3.enabled"] == "true"
        assert attrs["access_logs.s3.bucket"]["Ref"].startswith("AccessLogsBucket")
        assert attrs["access_logs.s3.prefix"] == prefix


def test_certificate_is_dns_validated_in_the_hosted_zone(app_template: assertions.Template) -> None:
    app_template.has_resource_properties(
        "AWS::CertificateManager::Certificate",
        {
            "DomainName": "fargo.example.com",
            "ValidationMethod": "DNS",
            "DomainValidationOptions": [
                {"DomainName": "fargo.example.com", "HostedZoneId": {"Ref": "PublicHostedZoneId"}}
            ],
        },
    )


def test_hosted_zone_id_is_a_parameter_when_the_spec_has_none(
    app_template: assertions.Template,
) -> None:
    app_template.has_parameter("PublicHostedZoneId", {"Type": "AWS::Route53::HostedZone::Id"})


def test_alias_record_for_the_domain_points_at_the_public_alb(
    app_template: assertions.Template,
) -> None:
    public_id, _ = load_balancer(app_template, "internet-facing")
    app_template.has_resource_properties(
        "AWS::Route53::RecordSet",
        {
            "Name": "fargo.example.com.",
            "Type": "A",
            "HostedZoneId": {"Ref": "PublicHostedZoneId"},
            "AliasTarget": {
                "DNSName": {
                    "Fn::Join": ["", ["dualstack.", {"Fn::GetAtt": [public_id, "DNSName"]}]]
                },
                "HostedZoneId": {"Fn::GetAtt": [public_id, "CanonicalHostedZoneID"]},
            },
        },
    )


def build(spec: dict[str, Any]) -> assertions.Template:
    stack = cdk.Stack()
    vpc = ec2.Vpc(stack, "Vpc")
    groups = {
        name: elbv2.ApplicationTargetGroup(
            stack, name, vpc=vpc, port=80, target_type=elbv2.TargetType.IP
        )
        for name in ("a", "b")
    }
    LoadBalancer(
        stack,
        "Lb",
        name="edge",
        load_balancer=LoadBalancerSpec.model_validate(spec),
        vpc=vpc,
        public_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
        private_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
        target_groups=groups,
        access_logs=None,
    )
    return assertions.Template.from_stack(stack)


def edge_security_group(template: assertions.Template) -> dict[str, Any]:
    """The one security group of the load balancer ``build`` makes."""
    (group,) = [
        g
        for g in template.find_resources("AWS::EC2::SecurityGroup").values()
        if "load balancer edge" in g["Properties"]["GroupDescription"]
    ]
    return group


def test_imported_certificate_by_arn_without_zone_has_no_record_or_parameter() -> None:
    arn = "arn:aws:acm:us-east-1:123456789012:certificate/abc"
    template = build(
        {
            "scheme": "internet-facing",
            "certificate": {"domain": "x.example.net", "arn": arn},
            "listeners": [{"port": 443, "protocol": "HTTPS", "default_action": {"forward": "a"}}],
        }
    )
    template.resource_count_is("AWS::CertificateManager::Certificate", 0)
    template.resource_count_is("AWS::Route53::RecordSet", 0)
    assert template.find_parameters("*HostedZoneId") == {}
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener", {"Certificates": [{"CertificateArn": arn}]}
    )


def test_every_rule_condition_and_action_type_renders() -> None:
    template = build(
        {
            "scheme": "internal",
            "listeners": [
                {
                    "port": 8080,
                    "protocol": "HTTP",
                    "default_action": {"fixed_response": {"status_code": 404}},
                    "rules": [
                        {
                            "priority": 5,
                            "conditions": [
                                {"host_header": ["api.*"]},
                                {"http_header": {"name": "X-Env", "values": ["beta"]}},
                                {"http_request_method": ["GET"]},
                                {"query_string": [{"key": "v", "value": "2"}]},
                                {"source_ip": ["10.0.0.0/8"]},
                            ],
                            "action": {
                                "forward": {
                                    "target_groups": [
                                        {"target_group": "a", "weight": 3},
                                        {"target_group": "b", "weight": 1},
                                    ]
                                }
                            },
                        },
                        {
                            "priority": 9,
                            "conditions": [{"path_pattern": ["/old/*"]}],
                            "action": {
                                "redirect": {"path": "/new/#{path}", "status_code": "HTTP_302"}
                            },
                        },
                    ],
                }
            ],
        }
    )
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::ListenerRule",
        {
            "Priority": 5,
            "Conditions": [
                {"Field": "host-header", "HostHeaderConfig": {"Values": ["api.*"]}},
                {
                    "Field": "http-header",
                    "HttpHeaderConfig": {"HttpHeaderName": "X-Env", "Values": ["beta"]},
                },
                {"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["GET"]}},
                {
                    "Field": "query-string",
                    "QueryStringConfig": {"Values": [{"Key": "v", "Value": "2"}]},
                },
                {"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0/8"]}},
            ],
            "Actions": [
                {
                    "Type": "forward",
                    "ForwardConfig": {
                        "TargetGroups": [
                            {
                                "TargetGroupArn": {
                                    "Ref": assertions.Match.string_like_regexp("^a")
                                },
                                "Weight": 3,
                            },
                            {
                                "TargetGroupArn": {
                                    "Ref": assertions.Match.string_like_regexp("^b")
                                },
                                "Weight": 1,
                            },
                        ]
                    },
                }
            ],
        },
    )
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::ListenerRule",
        {
            "Priority": 9,
            "Actions": [
                {
                    "Type": "redirect",
                    "RedirectConfig": assertions.Match.object_like(
                        {"Path": "/new/#{path}", "StatusCode": "HTTP_302"}
                    ),
                }
            ],
        },
    )
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {
            "DefaultActions": [
                {
                    "Type": "fixed-response",
                    "FixedResponseConfig": {"StatusCode": "404", "ContentType": "text/plain"},
                }
            ]
        },
    )


def test_internal_load_balancer_admits_nobody_by_itself() -> None:
    template = build(
        {
            "scheme": "internal",
            "listeners": [{"port": 8090, "protocol": "HTTP", "default_action": {"forward": "a"}}],
        }
    )
    group = edge_security_group(template)
    assert "SecurityGroupIngress" not in group["Properties"]
    template.resource_count_is("AWS::EC2::SecurityGroupIngress", 0)


def test_public_http_that_serves_content_is_not_acknowledged() -> None:
    """Only an HTTP listener that redirects to HTTPS gets the port-80 acknowledgement."""
    template = build(
        {
            "scheme": "internet-facing",
            "listeners": [{"port": 80, "protocol": "HTTP", "default_action": {"forward": "a"}}],
        }
    )
    group = edge_security_group(template)
    assert "checkov" not in group.get("Metadata", {})
