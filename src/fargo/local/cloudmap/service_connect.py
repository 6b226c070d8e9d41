"""Service Connect endpoints in the twin's Cloud Map: made at start and by a new spec.

    make_endpoint(cloud_map, endpoint)                # its Cloud Map service and client alias
    delete_endpoint(cloud_map, endpoint, keep=[...])  # what no endpoint in ``keep`` still uses

The twin runs Service Connect as DNS: each endpoint is a Cloud Map service found by API
calls only (as ECS makes it), and its client alias a DNS name answering with the
service's healthy tasks; no proxy runs in the tasks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from fargo.local.cloudmap.registry import CloudMap, ServiceAlreadyExists
from fargo.spec.service_connect import Endpoint

# The TTL of a client alias in the twin's DNS. The proxy it stands in for learns of new
# and stopped tasks within seconds and has no DNS cache to expire.
ENDPOINT_TTL_SECONDS = 1


def make_endpoint(cloud_map: CloudMap, endpoint: Endpoint) -> None:
    """``endpoint``'s Cloud Map service (kept when it exists) and its client alias."""
    # An endpoint of the same discovery name that changed keeps its service and registrations.
    with contextlib.suppress(ServiceAlreadyExists):
        cloud_map.create_service(
            endpoint.namespace, endpoint.discovery_name, ttl=ENDPOINT_TTL_SECONDS, record_types=()
        )
    cloud_map.put_client_alias(endpoint.dns_name, endpoint.namespace, endpoint.discovery_name)


def delete_endpoint(cloud_map: CloudMap, endpoint: Endpoint, *, keep: Iterable[Endpoint]) -> None:
    """Delete ``endpoint``'s client alias and Cloud Map service where no endpoint in
    ``keep`` uses them; `CloudMapError` (`ResourceInUse`) while tasks are registered."""
    kept = list(keep)
    if endpoint.dns_name not in {e.dns_name for e in kept}:
        cloud_map.delete_client_alias(endpoint.dns_name)
    if endpoint.discovery_name not in {e.discovery_name for e in kept}:
        cloud_map.delete_service(endpoint.namespace, endpoint.discovery_name)
