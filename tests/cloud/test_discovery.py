"""Cloud Map: the private DNS namespace, its services, and the ECS service registries."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import assertions
from aws_cdk import aws_ec2 as ec2

from fargo.cloud.discovery import ServiceDiscovery
from fargo.spec.model import Discovery


def test_private_dns_namespace_in_the_vpc(app_template: assertions.Template) -> None:
    app_template.resource_count_is("AWS::ServiceDiscovery::PrivateDnsNamespace", 1)
    app_template.has_resource_properties(
        "AWS::ServiceDiscovery::PrivateDnsNamespace",
        {"Name": "microservice.local", "Vpc": assertions.Match.any_value()},
    )


def test_private_backend_has_a_records_ttl_60_multivalue_custom_health_check(
    app_template: assertions.Template,
) -> None:
    app_template.resource_count_is("AWS::ServiceDiscovery::Service", 1)
    app_template.has_resource_properties(
        "AWS::ServiceDiscovery::Service",
        {
            "Name": "private.backend",
            "DnsConfig": {"DnsRecords": [{"TTL": 60, "Type": "A"}], "RoutingPolicy": "MULTIVALUE"},
            "HealthCheckCustomConfig": {"FailureThreshold": 1},
        },
    )


def test_only_backend_private_registers_in_cloud_map(app_template: assertions.Template) -> None:
    services = app_template.find_resources("AWS::ECS::Service")
    registered = [
        logical_id for logical_id, s in services.items() if s["Properties"].get("ServiceRegistries")
    ]
    assert len(registered) == 1 and registered[0].startswith("BackendPrivateService")


def test_record_types_routing_and_threshold_follow_the_spec() -> None:
    stack = cdk.Stack()
    discovery = Discovery.model_validate(
        {
            "namespace": "shop.internal",
            "services": [
                {"name": "api", "ttl": 10, "record_types": ["A", "SRV"], "failure_threshold": 3},
                {"name": "worker", "record_types": ["SRV"], "routing_policy": "WEIGHTED"},
            ],
        }
    )
    ServiceDiscovery(stack, "Discovery", discovery=discovery, vpc=ec2.Vpc(stack, "Vpc"))
    template = assertions.Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::ServiceDiscovery::Service",
        {
            "Name": "api",
            "DnsConfig": {
                "DnsRecords": [{"Type": "A", "TTL": 10}, {"Type": "SRV", "TTL": 10}],
                "RoutingPolicy": "MULTIVALUE",
            },
            "HealthCheckCustomConfig": {"FailureThreshold": 3},
        },
    )
    template.has_resource_properties(
        "AWS::ServiceDiscovery::Service",
        {
            "Name": "worker",
            "DnsConfig": {"DnsRecords": [{"Type": "SRV", "TTL": 60}], "RoutingPolicy": "WEIGHTED"},
        },
    )
