"""Cloud Map, the service discovery registry, as pure state.

The registry the control plane keeps for service discovery, named after the
AWS API (``CreatePrivateDnsNamespace``, ``CreateHttpNamespace``, ``CreateService``,
``RegisterInstance``, ``UpdateInstanceCustomHealthStatus``, ``DiscoverInstances``), plus
plain A records and Service Connect client aliases.

An HTTP namespace, and a service created without record types (no ``DnsConfig``), are
found by API calls only, as on AWS: no DNS name answers for them. A Service Connect
endpoint is such a service; ECS's proxy answers its client alias in the cloud, and the
twin has no proxy, so `put_client_alias` makes the alias a DNS name of its own that
answers with the service's instances.

The DNS answers Route 53 gives for it come from
`fargo.local.cloudmap.route53.PrivateHostedZones` over this state (`CloudMap.answer`); no
I/O: :mod:`fargo.local.cloudmap.dns_server` puts the answers on the wire.

    cloud_map = CloudMap()
    cloud_map.create_private_dns_namespace("microservice.local")
    cloud_map.create_service("microservice.local", "private.backend", ttl=60)
    cloud_map.register_instance("microservice.local", "private.backend", "t1", "127.0.1.1", 8090)
    cloud_map.answer("private.backend.microservice.local", "A").answer
    # (ResourceRecord(name='private.backend.microservice.local.', type='A', ttl=60,
    #                 value='127.0.1.1'),)

The state is mutated by one asyncio loop only, so there are no locks.
"""

from __future__ import annotations

import contextlib
import ipaddress
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from fargo.local.cloudmap.route53 import (
    Answer,
    ARecord,
    DiscoveryService,
    InstanceHealthStatus,
    PrivateHostedZones,
    RoutingPolicy,
    ServiceInstance,
    normalize,
)

HealthStatusFilter: TypeAlias = Literal["HEALTHY", "UNHEALTHY", "ALL", "HEALTHY_OR_ELSE_ALL"]

RECORD_TYPES = frozenset({"A", "SRV"})
MAX_TTL = 2_147_483_647
ATTRIBUTE_IPV4 = "AWS_INSTANCE_IPV4"
ATTRIBUTE_PORT = "AWS_INSTANCE_PORT"


NamespaceType = Literal["DNS_PRIVATE", "HTTP"]


class CloudMapError(Exception):
    """Base of the errors the registry raises; each is named after the AWS error."""


class InvalidInput(CloudMapError, ValueError):
    """A name, address, port or TTL that AWS would reject."""


class NamespaceNotFound(CloudMapError, LookupError):
    pass


class ServiceNotFound(CloudMapError, LookupError):
    pass


class InstanceNotFound(CloudMapError, LookupError):
    pass


class NamespaceAlreadyExists(CloudMapError):
    pass


class ServiceAlreadyExists(CloudMapError):
    pass


class ResourceInUse(CloudMapError):
    """A namespace that still has services, or a service that still has instances."""


@dataclass(frozen=True)
class Instance:
    """One registered instance, as ``DiscoverInstances`` reports it."""

    instance_id: str
    namespace: str
    service: str
    ipv4: str
    port: int
    health_status: InstanceHealthStatus
    attributes: Mapping[str, str]


class CloudMap:
    """Private DNS namespaces, their services and instances, and plain A records."""

    def __init__(self, *, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()  # noqa: S311 - load spreading, not security
        self._namespaces: dict[str, dict[str, DiscoveryService]] = {}
        self._http_namespaces: dict[str, dict[str, DiscoveryService]] = {}
        self._records: dict[str, ARecord] = {}
        self._aliases: dict[str, DiscoveryService] = {}
        self._zones = PrivateHostedZones(
            self._namespaces, self._records, rng=self._rng, aliases=self._aliases
        )
        self._listeners: list[Callable[[], None]] = []

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every change of the DNS state (see `dns_state`)."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[], None]) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def dns_state(
        self,
    ) -> tuple[
        Mapping[str, Mapping[str, DiscoveryService]],
        Mapping[str, ARecord],
        Mapping[str, DiscoveryService],
    ]:
        """What the DNS answers come from: private namespaces, plain records, client
        aliases (live, not copies)."""
        return self._namespaces, self._records, self._aliases

    def _changed(self) -> None:
        for listener in list(self._listeners):
            listener()

    # -- Cloud Map API -------------------------------------------------------------------

    def create_private_dns_namespace(self, name: str) -> None:
        namespace = _domain(name, "namespace")
        if namespace in self._namespaces or namespace in self._http_namespaces:
            raise NamespaceAlreadyExists(f"namespace {namespace!r} already exists")
        self._namespaces[namespace] = {}
        self._changed()

    def create_http_namespace(self, name: str) -> None:
        """A namespace whose services are found by API calls only (no hosted zone)."""
        namespace = _domain(name, "namespace")
        if namespace in self._namespaces or namespace in self._http_namespaces:
            raise NamespaceAlreadyExists(f"namespace {namespace!r} already exists")
        self._http_namespaces[namespace] = {}
        self._changed()

    def delete_namespace(self, name: str) -> None:
        namespace = normalize(name)
        if self._services(namespace):
            raise ResourceInUse(f"namespace {namespace!r} still has services; delete them first")
        self._namespaces.pop(namespace, None)
        self._http_namespaces.pop(namespace, None)
        self._changed()

    def create_service(
        self,
        namespace: str,
        name: str,
        *,
        ttl: int,
        record_types: Sequence[str] = ("A",),  # none: no DnsConfig (API calls only)
        routing_policy: RoutingPolicy = "MULTIVALUE",
    ) -> None:
        services = self._services(normalize(namespace))
        service = _domain(name, "service")
        if service in services:
            raise ServiceAlreadyExists(f"service {service!r} already exists in {namespace!r}")
        types = self._dns_config(namespace, ttl, record_types, routing_policy)
        services[service] = DiscoveryService(ttl, types, routing_policy)
        self._changed()

    def update_service(
        self,
        namespace: str,
        name: str,
        *,
        ttl: int,
        record_types: Sequence[str] = ("A",),
        routing_policy: RoutingPolicy = "MULTIVALUE",
    ) -> None:
        """``UpdateService`` of its DNS configuration; its instances stay registered.

        (AWS updates only the TTL in place; a new record type or routing policy replaces
        the service, and ECS registers the tasks again. The twin's result is the same.)"""
        service = self._service(namespace, name)
        types = self._dns_config(namespace, ttl, record_types, routing_policy)
        service.ttl, service.record_types, service.routing_policy = ttl, types, routing_policy
        self._changed()

    def _dns_config(
        self,
        namespace: str,
        ttl: int,
        record_types: Sequence[str],
        routing_policy: RoutingPolicy,
    ) -> frozenset[str]:
        """The record types of a valid DNS configuration; `InvalidInput` says what is wrong."""
        if not 0 <= ttl <= MAX_TTL:
            raise InvalidInput(f"TTL {ttl} is outside 0..{MAX_TTL}")
        types = frozenset(t.upper() for t in record_types)
        if not types <= RECORD_TYPES:
            raise InvalidInput(f"record types {list(record_types)} must be some of A, SRV")
        if types and normalize(namespace) in self._http_namespaces:
            raise InvalidInput(f"namespace {namespace!r} is an HTTP namespace: no DNS records")
        if routing_policy not in ("MULTIVALUE", "WEIGHTED"):
            raise InvalidInput(f"routing policy {routing_policy!r} must be MULTIVALUE or WEIGHTED")
        return types

    def delete_service(self, namespace: str, name: str) -> None:
        services = self._services(normalize(namespace))
        service = self._service(namespace, name)
        if service.instances:
            raise ResourceInUse(f"service {name!r} still has instances; deregister them first")
        del services[normalize(name)]
        self._changed()

    def register_instance(
        self,
        namespace: str,
        service: str,
        instance_id: str,
        ipv4: str,
        port: int,
        attributes: Mapping[str, str] | None = None,
    ) -> None:
        """Register or update an instance; a new one is HEALTHY until reported otherwise."""
        target = self._service(namespace, service)
        key = _label(instance_id, "instance id")
        try:
            address = ipaddress.IPv4Address(ipv4)
        except ValueError:
            raise InvalidInput(f"{ipv4!r} is not an IPv4 address") from None
        if not 1 <= port <= 65535:
            raise InvalidInput(f"port {port} is outside 1..65535")
        merged = {**(attributes or {}), ATTRIBUTE_IPV4: str(address), ATTRIBUTE_PORT: str(port)}
        previous = target.instances.get(key)
        health: InstanceHealthStatus = previous.health_status if previous else "HEALTHY"
        target.instances[key] = ServiceInstance(str(address), port, merged, health)
        self._changed()

    def deregister_instance(self, namespace: str, service: str, instance_id: str) -> None:
        instances = self._service(namespace, service).instances
        if instances.pop(normalize(instance_id), None) is None:
            raise InstanceNotFound(f"instance {instance_id!r} is not registered in {service!r}")
        self._changed()

    def update_instance_custom_health_status(
        self, namespace: str, service: str, instance_id: str, status: InstanceHealthStatus
    ) -> None:
        if status not in ("HEALTHY", "UNHEALTHY"):
            raise InvalidInput(f"status {status!r} must be HEALTHY or UNHEALTHY")
        instances = self._service(namespace, service).instances
        try:
            instance = instances[normalize(instance_id)]
        except KeyError:
            raise InstanceNotFound(
                f"instance {instance_id!r} is not registered in {service!r}"
            ) from None
        if instance.health_status != status:
            instance.health_status = status
            self._changed()

    def discover_instances(
        self, namespace: str, service: str, *, health_status: HealthStatusFilter = "HEALTHY"
    ) -> list[Instance]:
        target = self._service(namespace, service)
        ns, name = normalize(namespace), normalize(service)
        found = [
            Instance(key, ns, name, i.ipv4, i.port, i.health_status, dict(i.attributes))
            for key, i in target.instances.items()
        ]
        if health_status == "ALL":
            return found
        wanted = "HEALTHY" if health_status == "HEALTHY_OR_ELSE_ALL" else health_status
        matching = [i for i in found if i.health_status == wanted]
        if health_status == "HEALTHY_OR_ELSE_ALL" and not matching:
            return found
        return matching

    def namespaces(self) -> list[tuple[str, NamespaceType]]:
        """``ListNamespaces``: each namespace's name and type."""
        private: list[tuple[str, NamespaceType]] = [(n, "DNS_PRIVATE") for n in self._namespaces]
        return private + [(n, "HTTP") for n in self._http_namespaces]

    def services(self, namespace: str) -> dict[str, DiscoveryService]:
        """``ListServices`` of one namespace: name → its DNS settings and instances."""
        return dict(self._services(normalize(namespace)))

    # -- Route 53 records outside Cloud Map ----------------------------------------------

    def put_record(self, fqdn: str, ipv4: str, ttl: int) -> None:
        """Create or replace (UPSERT) a plain A record, e.g. an internal load balancer's name.

        The record lives in the namespace that contains it, or else in a zone named
        after its parent domain (``lb.elb.local`` → zone ``elb.local``).
        """
        name = _domain(fqdn, "record name")
        try:
            address = ipaddress.IPv4Address(ipv4)
        except ValueError:
            raise InvalidInput(f"{ipv4!r} is not an IPv4 address") from None
        if not 0 <= ttl <= MAX_TTL:
            raise InvalidInput(f"TTL {ttl} is outside 0..{MAX_TTL}")
        self._records[name] = ARecord(str(address), ttl)
        self._changed()

    def delete_record(self, fqdn: str) -> None:
        if self._records.pop(normalize(fqdn), None) is None:
            raise InvalidInput(f"there is no record named {fqdn!r}")
        self._changed()

    def put_client_alias(self, dns_name: str, namespace: str, service: str) -> None:
        """Answer ``dns_name`` with ``service``'s instances, as its A records (the twin's
        Service Connect endpoint, without a proxy)."""
        self._aliases[_domain(dns_name, "client alias")] = self._service(namespace, service)
        self._changed()

    def delete_client_alias(self, dns_name: str) -> None:
        if self._aliases.pop(_domain(dns_name, "client alias"), None) is None:
            raise InvalidInput(f"there is no client alias named {dns_name!r}")
        self._changed()

    def zones(self) -> list[str]:
        """Every zone this registry answers for: namespaces and the zones of plain records."""
        return self._zones.zones()

    def answer(self, qname: str, qtype: str) -> Answer:
        """Answer one question as Route 53 would for a private hosted zone."""
        return self._zones.answer(qname, qtype)

    # -- internals -----------------------------------------------------------------------

    def _services(self, namespace: str) -> dict[str, DiscoveryService]:
        if namespace in self._namespaces:
            return self._namespaces[namespace]
        try:
            return self._http_namespaces[namespace]
        except KeyError:
            raise NamespaceNotFound(f"namespace {namespace!r} does not exist") from None

    def _service(self, namespace: str, name: str) -> DiscoveryService:
        try:
            return self._services(normalize(namespace))[normalize(name)]
        except KeyError:
            raise ServiceNotFound(f"service {name!r} does not exist in {namespace!r}") from None


def _is_label(label: str) -> bool:
    return 0 < len(label) <= 63 and label.isascii() and all(c.isalnum() or c in "-_" for c in label)


def _label(text: str, what: str) -> str:
    label = normalize(text)
    if not _is_label(label):
        raise InvalidInput(f"{what} {text!r} must be one DNS label: 1-63 letters, digits, - or _")
    return label


def _domain(text: str, what: str) -> str:
    name = normalize(text)
    if len(name) > 253 or not all(_is_label(label) for label in name.split(".")):
        raise InvalidInput(
            f"{what} {text!r} must be a DNS name of at most 253 characters, "
            "its dot-separated labels 1-63 letters, digits, - or _"
        )
    return name
