"""Cloud Map (servicediscovery) on the twin's registry: namespaces, services, instances and
their health, and DiscoverInstances as the twin's DNS server would answer.

Ids are derived from names (``ns-…``, ``srv-…``), so the same spec has the same ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fargo.local.aws_api import arns
from fargo.local.aws_api.errors import AwsError
from fargo.local.aws_api.paging import page
from fargo.local.aws_api.server import Handler
from fargo.local.cloudmap.registry import CloudMapError, NamespaceNotFound, ServiceNotFound
from fargo.local.cloudmap.route53 import DiscoveryService

if TYPE_CHECKING:
    from fargo.local.runtime import Runtime

INVALID = "InvalidInput"


def namespace_id(name: str) -> str:
    return "ns-" + arns.stable_id("namespace", name)


def service_id(namespace: str, name: str) -> str:
    return "srv-" + arns.stable_id("service", namespace, name)


class ServiceDiscoveryApi:
    service = "servicediscovery"
    invalid_parameter = INVALID

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def operations(self) -> Mapping[str, Handler]:
        return {
            "ListNamespaces": self.list_namespaces,
            "GetNamespace": self.get_namespace,
            "ListServices": self.list_services,
            "GetService": self.get_service,
            "ListInstances": self.list_instances,
            "GetInstance": self.get_instance,
            "GetInstancesHealthStatus": self.get_instances_health_status,
            "DiscoverInstances": self.discover_instances,
        }

    @property
    def _region(self) -> str:
        return self.runtime.spec.region

    def _namespaces(self) -> dict[str, tuple[str, str]]:
        """Namespace id → (name, type)."""
        return {namespace_id(n): (n, kind) for n, kind in self.runtime.cloud_map.namespaces()}

    def _services(self) -> dict[str, tuple[str, str, DiscoveryService]]:
        """Service id → (namespace, name, service)."""
        found = {}
        for namespace, _ in self.runtime.cloud_map.namespaces():
            for name, service in self.runtime.cloud_map.services(namespace).items():
                found[service_id(namespace, name)] = (namespace, name, service)
        return found

    def _namespace(self, namespace: str, kind: str) -> dict[str, Any]:
        nid = namespace_id(namespace)
        properties: dict[str, Any] = {"HttpProperties": {"HttpName": namespace}}
        if kind == "DNS_PRIVATE":
            zone = "Z" + arns.stable_id("zone", namespace, length=13).upper()
            properties["DnsProperties"] = {"HostedZoneId": zone, "SOA": {"TTL": 15}}
        return {
            "Id": nid,
            "Arn": arns.arn("servicediscovery", self._region, f"namespace/{nid}"),
            "Name": namespace,
            "Type": kind,
            "Properties": properties,
            "ServiceCount": len(self.runtime.cloud_map.services(namespace)),
            "CreateDate": self.runtime.created_at,
        }

    def list_namespaces(self, params: dict[str, Any]) -> dict[str, Any]:
        found = [self._namespace(n, k) for n, k in self._namespaces().values()]
        for wanted in params.get("Filters") or []:
            if wanted.get("Name") == "TYPE":
                found = [n for n in found if n["Type"] in wanted.get("Values", [])]
            if wanted.get("Name") == "NAME":
                found = [n for n in found if n["Name"] in wanted.get("Values", [])]
        items, token = page(
            found, params.get("NextToken"), params.get("MaxResults"), default=100, invalid=INVALID
        )
        return {"Namespaces": items, "NextToken": token}

    def get_namespace(self, params: dict[str, Any]) -> dict[str, Any]:
        found = self._namespaces().get(params["Id"])
        if found is None:
            raise AwsError("NamespaceNotFound", f"Namespace not found: {params['Id']}")
        return {"Namespace": self._namespace(*found)}

    def _service(
        self, sid: str, namespace: str, name: str, service: DiscoveryService
    ) -> dict[str, Any]:
        nid = namespace_id(namespace)
        described: dict[str, Any] = {
            "Id": sid,
            "Arn": arns.arn("servicediscovery", self._region, f"service/{sid}"),
            "Name": name,
            "NamespaceId": nid,
            "InstanceCount": len(service.instances),
            "HealthCheckCustomConfig": {"FailureThreshold": 1},
            "CreateDate": self.runtime.created_at,
            "Type": "DNS_HTTP" if service.record_types else "HTTP",
        }
        if service.record_types:
            described["DnsConfig"] = {
                "NamespaceId": nid,
                "RoutingPolicy": service.routing_policy,
                "DnsRecords": [
                    {"Type": t, "TTL": service.ttl} for t in sorted(service.record_types)
                ],
            }
        return described

    def list_services(self, params: dict[str, Any]) -> dict[str, Any]:
        services = self._services()
        wanted = {
            nid
            for f in params.get("Filters") or []
            if f.get("Name") == "NAMESPACE_ID"
            for nid in f.get("Values", [])
        }
        found = [
            {k: v for k, v in self._service(sid, ns, name, service).items() if k != "NamespaceId"}
            for sid, (ns, name, service) in services.items()
            if not wanted or namespace_id(ns) in wanted
        ]
        items, token = page(
            found, params.get("NextToken"), params.get("MaxResults"), default=100, invalid=INVALID
        )
        return {"Services": items, "NextToken": token}

    def _lookup(self, sid: str) -> tuple[str, str, DiscoveryService]:
        found = self._services().get(sid)
        if found is None:
            raise AwsError("ServiceNotFound", f"Service not found: {sid}")
        return found

    def get_service(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"Service": self._service(params["Id"], *self._lookup(params["Id"]))}

    def list_instances(self, params: dict[str, Any]) -> dict[str, Any]:
        _, _, service = self._lookup(params["ServiceId"])
        found = [
            {"Id": key, "Attributes": dict(i.attributes)} for key, i in service.instances.items()
        ]
        items, token = page(
            found, params.get("NextToken"), params.get("MaxResults"), default=100, invalid=INVALID
        )
        return {"Instances": items, "NextToken": token}

    def get_instance(self, params: dict[str, Any]) -> dict[str, Any]:
        _, _, service = self._lookup(params["ServiceId"])
        instance = service.instances.get(params["InstanceId"])
        if instance is None:
            raise AwsError("InstanceNotFound", f"Instance not found: {params['InstanceId']}")
        return {"Instance": {"Id": params["InstanceId"], "Attributes": dict(instance.attributes)}}

    def get_instances_health_status(self, params: dict[str, Any]) -> dict[str, Any]:
        _, _, service = self._lookup(params["ServiceId"])
        status = {key: i.health_status for key, i in service.instances.items()}
        if params.get("Instances"):
            status = {k: v for k, v in status.items() if k in params["Instances"]}
        keys, token = page(
            list(status),
            params.get("NextToken"),
            params.get("MaxResults"),
            default=100,
            invalid=INVALID,
        )
        return {"Status": {k: status[k] for k in keys}, "NextToken": token}

    def discover_instances(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            found = self.runtime.cloud_map.discover_instances(
                params["NamespaceName"],
                params["ServiceName"],
                health_status=params.get("HealthStatus", "HEALTHY"),
            )
        except NamespaceNotFound as err:
            raise AwsError("NamespaceNotFound", str(err)) from None
        except ServiceNotFound as err:
            raise AwsError("ServiceNotFound", str(err)) from None
        except CloudMapError as err:
            raise AwsError(INVALID, str(err)) from None
        limit = params.get("MaxResults") or 100
        return {
            "Instances": [
                {
                    "InstanceId": i.instance_id,
                    "NamespaceName": i.namespace,
                    "ServiceName": i.service,
                    "HealthStatus": i.health_status,
                    "Attributes": dict(i.attributes),
                }
                for i in found[:limit]
            ],
            "InstancesRevision": len(found),
        }
