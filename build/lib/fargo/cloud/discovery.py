"""Cloud Map: a private DNS namespace in the VPC and one discovery service per spec entry."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_servicediscovery as servicediscovery
from constructs import Construct

from fargo.cloud.names import pascal
from fargo.spec.model import Discovery

# CDK has no "A and SRV" record type: such a service is made as SRV (so ECS registers the
# container port) and its DNS records are then set to both.
_RECORD_TYPES = {
    ("A",): servicediscovery.DnsRecordType.A,
    ("SRV",): servicediscovery.DnsRecordType.SRV,
    ("A", "SRV"): servicediscovery.DnsRecordType.SRV,
}


class ServiceDiscovery(Construct):
    """The namespace (a Route 53 private hosted zone) and its services.

    Tasks register through their ECS service (`Services`); health is ECS's to report
    (a custom health check), so Route 53 stops answering with a stopped task's address.

    Children: ``namespace``, ``services`` (discovery name → Cloud Map service).
    """

    def __init__(self, scope: Construct, id: str, *, discovery: Discovery, vpc: ec2.IVpc) -> None:
        super().__init__(scope, id)
        self.namespace = servicediscovery.PrivateDnsNamespace(
            self, "Namespace", name=discovery.namespace, vpc=vpc
        )
        self.services: dict[str, servicediscovery.Service] = {}
        for entry in discovery.services:
            record_types = tuple(sorted(set(entry.record_types)))
            service = self.namespace.create_service(
                pascal(entry.name),
                name=entry.name,
                dns_record_type=_RECORD_TYPES[record_types],
                dns_ttl=cdk.Duration.seconds(entry.ttl),
                custom_health_check=servicediscovery.HealthCheckCustomConfig(
                    failure_threshold=entry.failure_threshold
                ),
            )
            # CDK derives the routing policy itself (MULTIVALUE unless CNAME or load balancer)
            # and has no "A and SRV": the spec's values are written to the resource.
            cfn = service.node.default_child
            assert isinstance(cfn, servicediscovery.CfnService)
            cfn.add_property_override("DnsConfig.RoutingPolicy", entry.routing_policy)
            cfn.add_property_override(
                "DnsConfig.DnsRecords",
                [{"Type": record, "TTL": entry.ttl} for record in record_types],
            )
            self.services[entry.name] = service
