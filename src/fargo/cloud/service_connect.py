"""ECS Service Connect: the namespace, and each service's ``ServiceConnectConfiguration``.

- the namespace is the ``discovery`` section's private DNS namespace when the spec names
  that one, else a Cloud Map HTTP namespace (API calls only: AWS's recommendation, and no
  Route 53 zone to pay for); the cluster gets it as its Service Connect default;
- a client-server service (``service_connect:``) serves one endpoint: its port mapping
  ``http`` (application protocol HTTP, so the proxy reports HTTP metrics and retries),
  its discovery name, and one client alias ``dns_name:port``;
- a client (a service that calls a client-server service) joins the namespace with no
  endpoint of its own, and is created after the services it calls: a task resolves only
  the endpoints that existed when it started;
- the proxy writes its logs to the service's log group.

Security groups need nothing more than ``calls``: the client's proxy connects to the
server's proxy on the container port (`fargo.cloud.security`).
"""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_logs as logs
from aws_cdk import aws_servicediscovery as servicediscovery
from constructs import Construct

from fargo.cloud.discovery import ServiceDiscovery
from fargo.spec import Spec
from fargo.spec import service_connect as sc

# The name of every container's port mapping; a Service Connect service refers to it.
PORT_MAPPING_NAME = "http"
PROXY_LOG_STREAM_PREFIX = "service-connect"


def namespace(
    scope: Construct, spec: Spec, *, discovery: ServiceDiscovery | None
) -> servicediscovery.INamespace | None:
    """The Service Connect namespace, None when the spec has none."""
    name = sc.namespace(spec)
    if name is None:
        return None
    if discovery is not None and discovery.namespace.namespace_name == name:
        return discovery.namespace
    return servicediscovery.HttpNamespace(
        scope,
        "ServiceConnectNamespace",
        name=name,
        description=f"{spec.name}: ECS Service Connect endpoints",
    )


def enable(
    spec: Spec,
    name: str,
    service: ecs.FargateService,
    *,
    namespace: servicediscovery.INamespace | None,
    log_group: logs.ILogGroup,
) -> None:
    """Turn Service Connect on for spec service ``name`` when it serves or calls an
    endpoint: ECS then adds the proxy to each of its tasks."""
    if namespace is None or name not in sc.clients(spec):
        return
    endpoint = sc.endpoint_of(spec, name)
    service.enable_service_connect(
        namespace=namespace.namespace_arn,
        services=[
            ecs.ServiceConnectService(
                port_mapping_name=PORT_MAPPING_NAME,
                discovery_name=endpoint.discovery_name,
                dns_name=endpoint.dns_name,
                port=endpoint.port,
            )
        ]
        if endpoint is not None
        else None,
        log_driver=ecs.LogDrivers.aws_logs(
            stream_prefix=PROXY_LOG_STREAM_PREFIX, log_group=log_group
        ),
    )


def set_cluster_default(cluster: ecs.Cluster, namespace: servicediscovery.INamespace) -> None:
    """The cluster's ``ServiceConnectDefaults``: services created outside fargo (the
    console, ``aws ecs create-service``) join the same namespace by default."""
    cfn = cluster.node.default_child
    assert isinstance(cfn, ecs.CfnCluster)
    cfn.service_connect_defaults = ecs.CfnCluster.ServiceConnectDefaultsProperty(
        namespace=namespace.namespace_arn
    )


def order_deployments(spec: Spec, services: Mapping[str, ecs.FargateService]) -> None:
    """Create (and so start) each client after the client-server services it calls."""
    serving = set(sc.servers(spec))
    for client in sc.clients(spec):
        for callee in spec.services[client].calls:
            if callee in serving and callee != client:
                _cfn(services[client]).add_resource_dependency(_cfn(services[callee]))


def _cfn(service: ecs.FargateService) -> cdk.CfnResource:
    cfn = service.node.default_child
    assert isinstance(cfn, cdk.CfnResource)
    return cfn
