"""ECS Service Connect in the spec: endpoints, clients and their checks, for both worlds.

    for endpoint in endpoints(spec).values():
        endpoint.service, endpoint.discovery_name, endpoint.dns_name, endpoint.port
        # "backend-private", "backend-private", "backend.internal", 8090
    clients(spec)  # services that call a Service Connect service: {"backend-public"}

A service with ``service_connect:`` is a *client-server* service: ECS creates a Cloud Map
service (its discovery name) in the cluster's Service Connect namespace and gives every
client an endpoint ``http://<dns_name>:<port>`` served by the Service Connect proxy (Envoy)
in the client's own task. A service that lists a Service Connect service in ``calls`` is a
*client*; a client-server service is a client too. Only clients resolve the endpoints:
``${service_connect:NAME}`` is refused in a service that does not call NAME's service.

The cloud renders this as ECS ``ServiceConnectConfiguration`` (`fargo.cloud.service_connect`);
the twin runs it as DNS with the same names, without a proxy
(`fargo.local.cloudmap.registry`): ``dns_name`` answers with the healthy tasks' addresses.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from fargo.spec import refs
from fargo.spec.errors import Loc, Problem
from fargo.spec.model import Spec

# ECS's advice for the proxy's share of a task (Service Connect proxy, ECS developer guide).
PROXY_CPU_UNITS = 256
PROXY_MEMORY_MIB = 64
_PORT_AFTER = re.compile(r"^:(\d+)")


@dataclass(frozen=True)
class Endpoint:
    """One Service Connect endpoint, its defaults filled in.

    ``port`` is the client alias's port (what clients call); ``container_port`` is where
    the server's proxy listens and where callers' security groups must reach.
    """

    service: str
    namespace: str
    discovery_name: str
    dns_name: str
    port: int
    container_port: int

    @property
    def url(self) -> str:
        return f"http://{self.dns_name}:{self.port}"


def namespace(spec: Spec) -> str | None:
    """The Service Connect namespace (``cluster.service_connect.namespace``), if any."""
    defaults = spec.cluster.service_connect
    return defaults.namespace if defaults is not None else None


def endpoints(spec: Spec) -> dict[str, Endpoint]:
    """Every endpoint by discovery name (the first service wins a duplicated name; `check`
    reports the second). Empty without a namespace."""
    found: dict[str, Endpoint] = {}
    for name in spec.services:
        endpoint = endpoint_of(spec, name)
        if endpoint is not None:
            found.setdefault(endpoint.discovery_name, endpoint)
    return found


def endpoint_of(spec: Spec, service: str) -> Endpoint | None:
    """``service``'s endpoint, None when it serves none (or the spec has no namespace)."""
    config = spec.services[service].service_connect
    space = namespace(spec)
    if config is None or space is None:
        return None
    discovery_name = config.discovery_name or service
    container_port = spec.services[service].port
    return Endpoint(
        service=service,
        namespace=space,
        discovery_name=discovery_name,
        dns_name=config.dns_name or f"{discovery_name}.{space}",
        port=config.port or container_port,
        container_port=container_port,
    )


def servers(spec: Spec) -> list[str]:
    """The client-server services: those with ``service_connect``."""
    return [name for name, svc in spec.services.items() if svc.service_connect is not None]


def clients(spec: Spec) -> list[str]:
    """The services that join the namespace as clients: each server, and each service
    that calls one."""
    serving = set(servers(spec))
    return [
        name
        for name, svc in spec.services.items()
        if name in serving or any(callee in serving for callee in svc.calls)
    ]


def check(spec: Spec) -> Iterator[Problem]:
    """The spec's Service Connect problems: a missing namespace, names two services claim,
    an endpoint named like another service's discovery record, references a service may
    not resolve."""
    space = namespace(spec)
    for name in servers(spec):
        if space is None:
            yield Problem(
                ("services", name, "service_connect"),
                "Service Connect needs a namespace, and the cluster has none",
                hint="set cluster.service_connect.namespace: the discovery namespace, or a "
                "new name (fargo creates a Cloud Map HTTP namespace)",
            )
    if space is None:
        return
    yield from _unique_names(spec, space)
    for name, svc in spec.services.items():
        for key, value in svc.environment.items():
            yield from _references(spec, name, ("services", name, "environment", key), value)


def _unique_names(spec: Spec, space: str) -> Iterator[Problem]:
    """ECS: discovery names and endpoints are unique within a namespace; a discovery name
    is a Cloud Map service, so it may not repeat one of the ``discovery`` section there."""
    discovery = spec.discovery
    dns_owners: dict[str, str] = {}  # Cloud Map DNS record → the ECS service registered there
    if discovery is not None:
        for owner, svc in spec.services.items():
            if svc.discovery is not None:
                dns_owners[discovery.fqdn(svc.discovery)] = owner
    seen_discovery: dict[str, str] = {}
    seen_dns: dict[str, str] = {}
    for name in servers(spec):
        endpoint = endpoint_of(spec, name)
        assert endpoint is not None
        at: Loc = ("services", name, "service_connect")
        config = spec.services[name].service_connect
        assert config is not None
        discovery_at: Loc = (*at, "discovery_name") if config.discovery_name else at
        dns_at: Loc = (*at, "dns_name") if config.dns_name else at
        first = seen_discovery.setdefault(endpoint.discovery_name, name)
        if first != name:
            yield Problem(
                discovery_at,
                f"discovery name {endpoint.discovery_name!r} is already service {first!r}'s "
                "Service Connect name",
                hint="discovery names are unique in a namespace; set service_connect."
                "discovery_name",
            )
        if (
            discovery is not None
            and discovery.namespace == space
            and spec.discovery_service(endpoint.discovery_name) is not None
        ):
            yield Problem(
                discovery_at,
                f"discovery name {endpoint.discovery_name!r} is a Cloud Map service of the "
                f"discovery section in namespace {space!r} already",
                hint="both would be Cloud Map services of that name in one namespace; set "
                "service_connect.discovery_name to another name",
            )
        first = seen_dns.setdefault(endpoint.dns_name, name)
        if first != name:
            yield Problem(
                dns_at,
                f"endpoint {endpoint.dns_name!r} is already service {first!r}'s",
                hint="Service Connect endpoints are unique in a namespace; set "
                "service_connect.dns_name",
            )
        owner_of_name = dns_owners.get(endpoint.dns_name)
        # The same name for the same tasks is AWS's migration path (clients move from DNS
        # to the proxy one deployment at a time); another service's tasks would be a trap.
        if owner_of_name is not None and owner_of_name != name:
            yield Problem(
                dns_at,
                f"endpoint {endpoint.dns_name!r} is the discovery name of service "
                f"{owner_of_name!r}: Service Connect clients would reach this service by it, "
                f"everyone else {owner_of_name!r}",
                hint="pick another service_connect.dns_name",
            )


def _references(spec: Spec, service: str, loc: Loc, value: str) -> Iterator[Problem]:
    parts = refs.split(value)
    for index, part in enumerate(parts):
        if isinstance(part, str) or part.kind != "service_connect":
            continue
        endpoint = endpoints(spec).get(part.name)
        if endpoint is None:
            continue  # `fargo.spec.checks` reports the unknown name
        if endpoint.service not in spec.services[service].calls:
            yield Problem(
                loc,
                f"{part.text}: only Service Connect clients resolve the endpoint, and "
                f"{service!r} does not call {endpoint.service!r}",
                hint=f"add {endpoint.service} to services.{service}.calls (it also opens the "
                "security group path)",
            )
        following = parts[index + 1] if index + 1 < len(parts) else ""
        port = _PORT_AFTER.match(following) if isinstance(following, str) else None
        if port is not None and int(port[1]) != endpoint.port:
            yield Problem(
                loc,
                f"{part.text}:{port[1]} calls port {port[1]}; the endpoint's port is "
                f"{endpoint.port}",
                hint=f"call {endpoint.url}, or set services.{endpoint.service}."
                "service_connect.port",
            )
