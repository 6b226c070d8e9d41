"""Why a route fails, in words: the service on its path that lacks healthy tasks.

    explain(spec, status, "/api/private")
    # "backend-private has 0 healthy tasks (2 desired, FAILING; last stop: Essential
    #  container in task exited (exit code 1)) — see `fargo status`"

A route's path: the services the public listener forwards it to, then, for the
reference system's relaying routes (`fargo.demo.points.REFERENCE_ROUTES`), the service
they call. Which other route relays to which service the spec does not say, so for
those only the services the listener forwards to are named.
"""

from __future__ import annotations

from fargo.demo.points import REFERENCE_ROUTES
from fargo.demo.requests import public_listener
from fargo.local.status import ServiceStatus, TwinStatus
from fargo.spec import Spec
from fargo.spec.elb import Request
from fargo.spec.routing import decide


def route_services(spec: Spec, status: TwinStatus, route: str) -> list[str]:
    """The services a request for ``route`` on the public listener passes, in order."""
    public = public_listener(spec, status.endpoints.load_balancers)
    if public is None:
        return []
    path = route.split("?", 1)[0]
    groups = [g for g, _ in decide(public.listener, Request(path=path)).target_groups]
    entry = [name for group in groups for name in spec.services_in(group)]
    reference = next((r for r in REFERENCE_ROUTES.values() if r.path == path), None)
    if reference is not None and reference.entry_service in entry:
        return [*entry, reference.callee]
    return list(dict.fromkeys(entry))


def shortfall(service: ServiceStatus) -> str:
    """``backend-private has 0 healthy tasks (2 desired, FAILING) — see `fargo status```."""
    detail = f"{service.desired} desired, {service.state}"
    if service.last_stop_reason and service.healthy < service.desired:
        detail += f"; last stop: {service.last_stop_reason}"
    noun = "task" if service.healthy == 1 else "tasks"
    return f"{service.name} has {service.healthy} healthy {noun} ({detail}) — see `fargo status`"


def explain(spec: Spec, status: TwinStatus, route: str) -> str | None:
    """Why ``route`` may fail: the first service on its path with no healthy task, else the
    first below its desired count; None when every one is at its desired count."""
    on_path = [
        s for name in route_services(spec, status, route) for s in status.services if s.name == name
    ]
    for service in on_path:
        if service.healthy == 0:  # failing, or scaled to 0
            return shortfall(service)
    for service in on_path:
        if service.healthy < service.desired:
            return shortfall(service)
    return None
