"""A spec other than the reference system synthesizes, and its template says what it says."""

from __future__ import annotations

from typing import Any

from aws_cdk import assertions

from fargo.cloud.synth import SynthResult


def rule(template: assertions.Template, priority: int) -> dict[str, Any]:
    (found,) = [
        r["Properties"]
        for r in template.find_resources("AWS::ElasticLoadBalancingV2::ListenerRule").values()
        if r["Properties"]["Priority"] == priority
    ]
    return found


def test_stacks_are_named_after_the_system_and_bound_to_its_region(shop: SynthResult) -> None:
    assert shop.stack_names() == ["shop-network", "shop-registry", "shop-app"]
    assert "eu-west-1" in str(shop.template("app"))


def test_three_zones_two_nat_gateways(shop: SynthResult) -> None:
    resources = shop.template("network")["Resources"].values()
    assert sum(r["Type"] == "AWS::EC2::NatGateway" for r in resources) == 2
    cidrs = sorted(
        r["Properties"]["CidrBlock"] for r in resources if r["Type"] == "AWS::EC2::Subnet"
    )
    assert cidrs == sorted(
        ["172.20.0.0/26", "172.20.0.64/26", "172.20.0.128/26",
         "172.20.4.0/24", "172.20.5.0/24", "172.20.6.0/24"]
    )  # fmt: skip


def test_only_an_internet_facing_load_balancer(shop_app_template: assertions.Template) -> None:
    shop_app_template.resource_count_is("AWS::ElasticLoadBalancingV2::LoadBalancer", 1)
    shop_app_template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        {
            "Scheme": "internet-facing",
            "LoadBalancerAttributes": assertions.Match.array_with(
                [{"Key": "idle_timeout.timeout_seconds", "Value": "120"}]
            ),
        },
    )


def test_tls13_only_policy_and_san(shop_app_template: assertions.Template) -> None:
    shop_app_template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {"Port": 443, "SslPolicy": "ELBSecurityPolicy-TLS13-1-3-2021-06"},
    )
    shop_app_template.has_resource_properties(
        "AWS::CertificateManager::Certificate",
        {
            "DomainName": "shop.example.org",
            "SubjectAlternativeNames": ["www.shop.example.org"],
            "DomainValidationOptions": assertions.Match.array_with(
                [{"DomainName": "shop.example.org", "HostedZoneId": "Z0123456789ABCDEFGHIJ"}]
            ),
        },
    )


def test_pinned_zone_id_needs_no_parameter(shop: SynthResult) -> None:
    assert "EdgeHostedZoneId" not in shop.template("app").get("Parameters", {})


def test_default_action_is_a_json_fixed_response(shop_app_template: assertions.Template) -> None:
    shop_app_template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {
            "Port": 443,
            "DefaultActions": [
                {
                    "Type": "fixed-response",
                    "FixedResponseConfig": {
                        "StatusCode": "404",
                        "ContentType": "application/json",
                        "MessageBody": '{"error": "not found"}',
                    },
                }
            ],
        },
    )


def test_host_and_path_rule_with_weighted_forward(shop_app_template: assertions.Template) -> None:
    props = rule(shop_app_template, 10)
    assert props["Conditions"] == [
        {"Field": "host-header", "HostHeaderConfig": {"Values": ["api.shop.example.org"]}},
        {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/v1/*"]}},
    ]
    (action,) = props["Actions"]
    assert [g["Weight"] for g in action["ForwardConfig"]["TargetGroups"]] == [90, 10]


def test_header_method_query_and_source_ip_rules(shop_app_template: assertions.Template) -> None:
    assert rule(shop_app_template, 20)["Conditions"] == [
        {
            "Field": "http-header",
            "HttpHeaderConfig": {"HttpHeaderName": "X-Canary", "Values": ["yes", "t?ue"]},
        }
    ]
    assert rule(shop_app_template, 30)["Conditions"][0] == {
        "Field": "http-request-method",
        "HttpRequestMethodConfig": {"Values": ["POST", "PUT"]},
    }
    assert rule(shop_app_template, 40)["Conditions"] == [
        {
            "Field": "query-string",
            "QueryStringConfig": {
                "Values": [{"Key": "version", "Value": "2*"}, {"Value": "canary"}]
            },
        }
    ]
    blocked = rule(shop_app_template, 50)
    assert blocked["Conditions"] == [
        {"Field": "source-ip", "SourceIpConfig": {"Values": ["192.0.2.0/24", "2001:db8::/32"]}}
    ]
    assert blocked["Actions"][0]["FixedResponseConfig"]["StatusCode"] == "403"


def test_302_redirect_rule(shop_app_template: assertions.Template) -> None:
    (action,) = rule(shop_app_template, 60)["Actions"]
    assert action["RedirectConfig"]["Path"] == "/new/#{path}"
    assert action["RedirectConfig"]["StatusCode"] == "HTTP_302"


def test_two_discovery_services(shop_app_template: assertions.Template) -> None:
    shop_app_template.resource_count_is("AWS::ServiceDiscovery::Service", 2)
    shop_app_template.has_resource_properties(
        "AWS::ServiceDiscovery::Service",
        {
            "Name": "api",
            "DnsConfig": {
                "DnsRecords": [{"Type": "A", "TTL": 10}, {"Type": "SRV", "TTL": 10}],
                "RoutingPolicy": "WEIGHTED",
            },
            "HealthCheckCustomConfig": {"FailureThreshold": 2},
        },
    )
    shop_app_template.has_resource_properties(
        "AWS::ServiceDiscovery::Service",
        {"Name": "worker", "DnsConfig": {"DnsRecords": [{"Type": "SRV", "TTL": 30}]}},
    )


def test_srv_registration_names_container_and_port(shop: SynthResult) -> None:
    registries = [
        (r["Metadata"]["fargo"]["service"], r["Properties"]["ServiceRegistries"])
        for r in shop.template("app")["Resources"].values()
        if r["Type"] == "AWS::ECS::Service" and "ServiceRegistries" in r["Properties"]
    ]
    as_names = {
        name: [(e["ContainerName"], e["ContainerPort"]) for e in entries]
        for name, entries in registries
    }
    assert as_names == {"api-blue": [("api-blue", 8000)], "worker": [("worker", 9000)]}


def test_arm64_task_and_sizes(shop: SynthResult) -> None:
    tasks = {
        r["Properties"]["ContainerDefinitions"][0]["Name"]: r["Properties"]
        for r in shop.template("app")["Resources"].values()
        if r["Type"] == "AWS::ECS::TaskDefinition"
    }
    assert tasks["web"]["RuntimePlatform"]["CpuArchitecture"] == "ARM64"
    assert (tasks["web"]["Cpu"], tasks["web"]["Memory"]) == ("256", "512")
    assert (tasks["api-blue"]["Cpu"], tasks["api-blue"]["Memory"]) == ("1024", "2048")
    assert tasks["worker"]["ContainerDefinitions"][0]["StopTimeout"] == 60
    check = tasks["web"]["ContainerDefinitions"][0]["HealthCheck"]
    assert (check["Interval"], check["Timeout"], check["Retries"], check["StartPeriod"]) == (
        15,
        3,
        2,
        20,
    )
    assert "http://127.0.0.1:3000/health" in check["Command"][3]
    assert "SystemControls" not in tasks["web"]["ContainerDefinitions"][0]


def test_memory_autoscaling_only(shop_app_template: assertions.Template) -> None:
    shop_app_template.resource_count_is("AWS::ApplicationAutoScaling::ScalingPolicy", 1)
    shop_app_template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "TargetTrackingScalingPolicyConfiguration": {
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "ECSServiceAverageMemoryUtilization"
                },
                "TargetValue": 75,
            }
        },
    )
    shop_app_template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget", {"MinCapacity": 2, "MaxCapacity": 6}
    )


def test_deployment_percentages_and_log_retention(shop: SynthResult) -> None:
    resources = shop.template("app")["Resources"].values()
    worker = next(
        r["Properties"] for r in resources
        if r["Type"] == "AWS::ECS::Service" and r["Metadata"]["fargo"]["service"] == "worker"
    )  # fmt: skip
    assert worker["DeploymentConfiguration"]["MinimumHealthyPercent"] == 50
    assert worker["DeploymentConfiguration"]["MaximumPercent"] == 150
    retention = {
        r["Properties"]["RetentionInDays"] for r in resources if r["Type"] == "AWS::Logs::LogGroup"
    }
    assert retention == {14}


def test_public_url_output(shop_app_template: assertions.Template) -> None:
    shop_app_template.has_output("EdgeUrl", {"Value": "https://shop.example.org"})
    assert shop_app_template.find_outputs("Namespace")["Namespace"]["Value"] == "shop.internal"
