"""Cloud Map and its Route 53 private hosted zones, as pure state.

The registry the control plane keeps for service discovery, named after the
AWS API (``CreatePrivateDnsNamespace``, ``CreateService``, ``RegisterInstance``,
``UpdateInstanceCustomHealthStatus``, ``DiscoverInstances``), plus the DNS
answers Route 53 would give for it. No I/O: :mod:`fargo.local.dns` puts the
answers on the wire.

    cloud_map = CloudMap()
    cloud_map.create_private_dns_namespace("microservice.local")
    cloud_map.create_service("microservice.local", "private.backend", ttl=60)
    cloud_map.register_instance("microservice.local", "private.backend", "t1", "127.0.1.1", 8090)
    cloud_map.answer("private.backend.microservice.local", "A").answer
    # (ResourceRecord(name='private.backend.microservice.local.', type='A', ttl=60,
    #                 value='127.0.1.1'),)

Route 53 behaviour kept here: MULTIVALUE answers hold up to 8 healthy records
in random order, or up to 8 unhealthy ones when none is healthy; WEIGHTED
answers (equal weights) hold one random healthy record, or one of all when none
is healthy. A service with SRV records answers ``1 1 <port> <instance>.<service>.<namespace>.``
and an A record for that target. Unknown names inside a zone are NXDOMAIN with
the zone's SOA; known names without the asked type are NODATA; names outside
every zone are REFUSED, as from an authoritative-only server.

The state is mutated by one asyncio loop only, so there are no locks.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from fargo.spec.defaults import MULTIVALUE_MAX_RECORDS

RoutingPolicy: TypeAlias = Literal["MULTIVALUE", "WEIGHTED"]
HealthStatus: TypeAlias = Literal["HEALTHY", "UNHEALTHY"]
HealthStatusFilter: TypeAlias = Literal["HEALTHY", "UNHEALTHY", "ALL", "HEALTHY_OR_ELSE_ALL"]
Rcode: TypeAlias = Literal["NOERROR", "NXDOMAIN", "REFUSED"]

RECORD_TYPES = frozenset({"A", "SRV"})
MAX_TTL = 2_147_483_647
# Cloud Map fills SRV priority and weight with 1.
SRV_PRIORITY = 1
SRV_WEIGHT = 1
# What a Route 53 hosted zone answers at its apex; the SOA TTL (900 s) also
# bounds negative caching (RFC 2308: min(SOA TTL, SOA MINIMUM)).
SOA_TTL = 900
SOA_VALUE = "ns-0.awsdns-00.com. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400"
NS_TTL = 172_800
NS_VALUES = ("ns-0.awsdns-00.com.",)
ATTRIBUTE_IPV4 = "AWS_INSTANCE_IPV4"
ATTRIBUTE_PORT = "AWS_INSTANCE_PORT"


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
    health_status: HealthStatus
    attributes: Mapping[str, str]


@dataclass(frozen=True)
class ResourceRecord:
    """One DNS record: absolute owner name, type, TTL and presentation-format value."""

    name: str
    type: str
    ttl: int
    value: str


@dataclass(frozen=True)
class Answer:
    """What an authoritative server answers for one question."""

    rcode: Rcode
    answer: tuple[ResourceRecord, ...] = ()
    authority: tuple[ResourceRecord, ...] = ()

    @property
    def authoritative(self) -> bool:
        return self.rcode != "REFUSED"


@dataclass
class _Instance:
    ipv4: str
    port: int
    attributes: dict[str, str]
    health_status: HealthStatus = "HEALTHY"


@dataclass
class _Service:
    ttl: int
    record_types: frozenset[str]
    routing_policy: RoutingPolicy
    instances: dict[str, _Instance] = field(default_factory=dict)


@dataclass
class _Record:
    ipv4: str
    ttl: int


class CloudMap:
    """Private DNS namespaces, their services and instances, and plain A records."""

    def __init__(self, *, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()  # noqa: S311 - load spreading, not security
        self._namespaces: dict[str, dict[str, _Service]] = {}
        self._records: dict[str, _Record] = {}

    # -- Cloud Map API -------------------------------------------------------------------

    def create_private_dns_namespace(self, name: str) -> None:
        namespace = _domain(name, "namespace")
        if namespace in self._namespaces:
            raise NamespaceAlreadyExists(f"namespace {namespace!r} already exists")
        self._namespaces[namespace] = {}

    def delete_namespace(self, name: str) -> None:
        namespace = _normalize(name)
        if self._services(namespace):
            raise ResourceInUse(f"namespace {namespace!r} still has services; delete them first")
        del self._namespaces[namespace]

    def create_service(
        self,
        namespace: str,
        name: str,
        *,
        ttl: int,
        record_types: Sequence[str] = ("A",),
        routing_policy: RoutingPolicy = "MULTIVALUE",
    ) -> None:
        services = self._services(_normalize(namespace))
        service = _domain(name, "service")
        if service in services:
            raise ServiceAlreadyExists(f"service {service!r} already exists in {namespace!r}")
        if not 0 <= ttl <= MAX_TTL:
            raise InvalidInput(f"TTL {ttl} is outside 0..{MAX_TTL}")
        types = frozenset(t.upper() for t in record_types)
        if not types or not types <= RECORD_TYPES:
            raise InvalidInput(f"record types {list(record_types)} must be some of A, SRV")
        if routing_policy not in ("MULTIVALUE", "WEIGHTED"):
            raise InvalidInput(f"routing policy {routing_policy!r} must be MULTIVALUE or WEIGHTED")
        services[service] = _Service(ttl, types, routing_policy)

    def delete_service(self, namespace: str, name: str) -> None:
        services = self._services(_normalize(namespace))
        service = self._service(namespace, name)
        if service.instances:
            raise ResourceInUse(f"service {name!r} still has instances; deregister them first")
        del services[_normalize(name)]

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
        health: HealthStatus = previous.health_status if previous else "HEALTHY"
        target.instances[key] = _Instance(str(address), port, merged, health)

    def deregister_instance(self, namespace: str, service: str, instance_id: str) -> None:
        instances = self._service(namespace, service).instances
        if instances.pop(_normalize(instance_id), None) is None:
            raise InstanceNotFound(f"instance {instance_id!r} is not registered in {service!r}")

    def update_instance_custom_health_status(
        self, namespace: str, service: str, instance_id: str, status: HealthStatus
    ) -> None:
        if status not in ("HEALTHY", "UNHEALTHY"):
            raise InvalidInput(f"status {status!r} must be HEALTHY or UNHEALTHY")
        instances = self._service(namespace, service).instances
        try:
            instances[_normalize(instance_id)].health_status = status
        except KeyError:
            raise InstanceNotFound(
                f"instance {instance_id!r} is not registered in {service!r}"
            ) from None

    def discover_instances(
        self, namespace: str, service: str, *, health_status: HealthStatusFilter = "HEALTHY"
    ) -> list[Instance]:
        target = self._service(namespace, service)
        ns, name = _normalize(namespace), _normalize(service)
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
        self._records[name] = _Record(str(address), ttl)

    def delete_record(self, fqdn: str) -> None:
        if self._records.pop(_normalize(fqdn), None) is None:
            raise InvalidInput(f"there is no record named {fqdn!r}")

    def zones(self) -> list[str]:
        """Every zone this registry answers for: namespaces and the zones of plain records."""
        found = set(self._namespaces)
        found.update(self._record_zone(name) for name in self._records)
        return sorted(found)

    # -- DNS -----------------------------------------------------------------------------

    def answer(self, qname: str, qtype: str) -> Answer:
        """Answer one question as Route 53 would for a private hosted zone."""
        name = _normalize(qname)
        rtype = qtype.upper()
        zone = self._zone_of(name)
        if zone is None:
            return Answer("REFUSED")
        owner = qname if qname.endswith(".") else qname + "."
        records = self._rrsets(zone, name, owner)
        if records is None:
            return Answer("NXDOMAIN", authority=(_soa(zone),))
        if rtype == "ANY":
            chosen = tuple(r for rs in records.values() for r in rs)
        else:
            chosen = tuple(records.get(rtype, ()))
        if not chosen:
            return Answer("NOERROR", authority=(_soa(zone),))
        return Answer("NOERROR", answer=chosen)

    # -- internals -----------------------------------------------------------------------

    def _services(self, namespace: str) -> dict[str, _Service]:
        try:
            return self._namespaces[namespace]
        except KeyError:
            raise NamespaceNotFound(f"namespace {namespace!r} does not exist") from None

    def _service(self, namespace: str, name: str) -> _Service:
        try:
            return self._services(_normalize(namespace))[_normalize(name)]
        except KeyError:
            raise ServiceNotFound(f"service {name!r} does not exist in {namespace!r}") from None

    def _record_zone(self, name: str) -> str:
        inside = [ns for ns in self._namespaces if _within(name, ns)]
        if inside:
            return max(inside, key=len)
        _, _, parent = name.partition(".")
        return parent or name

    def _zone_of(self, name: str) -> str | None:
        inside = [zone for zone in self.zones() if _within(name, zone)]
        return max(inside, key=len) if inside else None

    def _rrsets(
        self, zone: str, name: str, owner: str
    ) -> dict[str, Sequence[ResourceRecord]] | None:
        """The records at ``name`` by type; None when the name does not exist."""
        rrsets: dict[str, Sequence[ResourceRecord]] = {}
        if name == zone:
            rrsets["SOA"] = (ResourceRecord(owner, "SOA", SOA_TTL, SOA_VALUE),)
            rrsets["NS"] = tuple(ResourceRecord(owner, "NS", NS_TTL, ns) for ns in NS_VALUES)
        if (record := self._records.get(name)) and self._record_zone(name) == zone:
            rrsets["A"] = (ResourceRecord(owner, "A", record.ttl, record.ipv4),)
        for fqdn, service, instance_id in self._owners(zone, name):
            if instance_id is None:
                rrsets.update(self._service_rrsets(fqdn, service, owner))
            else:
                instance = service.instances[instance_id]
                rrsets["A"] = (ResourceRecord(owner, "A", service.ttl, instance.ipv4),)
        if rrsets:
            return rrsets
        # An empty non-terminal (e.g. ``backend.microservice.local``) exists without records.
        if any(_within(known, name) for known in self._names(zone)):
            return {}
        return None

    def _owners(self, zone: str, name: str) -> Iterable[tuple[str, _Service, str | None]]:
        """Services named ``name`` (instance None), or owning it as an SRV target (instance)."""
        for service_name, service in self._namespaces.get(zone, {}).items():
            fqdn = f"{service_name}.{zone}"
            if name == fqdn and service.instances:
                yield fqdn, service, None
            elif "SRV" in service.record_types and name.endswith("." + fqdn):
                instance_id = name.removesuffix("." + fqdn)
                if instance_id in service.instances:
                    yield fqdn, service, instance_id

    def _names(self, zone: str) -> Iterable[str]:
        yield from (n for n in self._records if self._record_zone(n) == zone)
        for service_name, service in self._namespaces.get(zone, {}).items():
            fqdn = f"{service_name}.{zone}"
            if service.instances:
                yield fqdn
            if "SRV" in service.record_types:
                yield from (f"{i}.{fqdn}" for i in service.instances)

    def _service_rrsets(
        self, fqdn: str, service: _Service, owner: str
    ) -> dict[str, Sequence[ResourceRecord]]:
        chosen = self._route(service)
        rrsets: dict[str, Sequence[ResourceRecord]] = {}
        if "A" in service.record_types:
            rrsets["A"] = [ResourceRecord(owner, "A", service.ttl, i.ipv4) for _, i in chosen]
        if "SRV" in service.record_types:
            rrsets["SRV"] = [
                ResourceRecord(
                    owner, "SRV", service.ttl, f"{SRV_PRIORITY} {SRV_WEIGHT} {i.port} {key}.{fqdn}."
                )
                for key, i in chosen
            ]
        return rrsets

    def _route(self, service: _Service) -> list[tuple[str, _Instance]]:
        """The instances one answer holds, by the service's routing policy."""
        instances = list(service.instances.items())
        healthy = [(k, i) for k, i in instances if i.health_status == "HEALTHY"]
        if service.routing_policy == "WEIGHTED":
            # Equal weights; when all are unhealthy Route 53 treats all as healthy.
            return [self._rng.choice(healthy or instances)]
        pool = healthy or instances
        return self._rng.sample(pool, min(len(pool), MULTIVALUE_MAX_RECORDS))


def _normalize(name: str) -> str:
    return name.rstrip(".").lower()


def _within(name: str, zone: str) -> bool:
    return name == zone or name.endswith("." + zone)


def _is_label(label: str) -> bool:
    return 0 < len(label) <= 63 and label.isascii() and all(c.isalnum() or c in "-_" for c in label)


def _label(text: str, what: str) -> str:
    label = _normalize(text)
    if not _is_label(label):
        raise InvalidInput(f"{what} {text!r} must be one DNS label: 1-63 letters, digits, - or _")
    return label


def _domain(text: str, what: str) -> str:
    name = _normalize(text)
    if len(name) > 253 or not all(_is_label(label) for label in name.split(".")):
        raise InvalidInput(
            f"{what} {text!r} must be a DNS name of at most 253 characters, "
            "its dot-separated labels 1-63 letters, digits, - or _"
        )
    return name


def _soa(zone: str) -> ResourceRecord:
    return ResourceRecord(zone + ".", "SOA", SOA_TTL, SOA_VALUE)
