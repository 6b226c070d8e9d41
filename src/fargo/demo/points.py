"""The seven demonstration points, checked against a `World`.

Each point reports pass, fail or skipped with its evidence: which tasks answered over
N calls, the discovery answer, the certificate, the rule that routed each request. An
error on the way (refused connection, DNS timeout, TLS failure) fails that point with
the error as evidence; the other points still run.

Points 2–5 call the reference system's routes (`REFERENCE_ROUTES`) and are skipped as
not applicable when the spec has no such service or route. Point 6 is derived from
the spec: for every rule of the public HTTPS listener (and its default action) it
makes a request that the rule matches and checks where the answer came from
(`fargo.demo.rules`); point 7 is a TLS handshake (`fargo.demo.tls`).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import dns.exception

from fargo.demo.report import Point
from fargo.demo.requests import PublicListener
from fargo.demo.rules import check_rules
from fargo.demo.tls import check_tls
from fargo.demo.world import World
from fargo.spec import Spec
from fargo.spec.elb import Listener, Request
from fargo.spec.routing import decide

CALLS = 20
REQUEST_TIMEOUT_SECONDS = 10.0

TITLES = {
    1: "task pulls its image through the NAT Gateway",
    2: "service to service through the internal load balancer",
    3: "service to service through Cloud Map service discovery",
    4: "the load balancer balances across a service's tasks",
    5: "service discovery balances across a service's tasks (MULTIVALUE DNS)",
    6: "the load balancer routes by rules",
    7: "an SSL/TLS certificate is attached to the load balancer",
}


@dataclass(frozen=True)
class ReferenceRoute:
    """A route of the reference system's public backend that calls another service."""

    path: str
    entry_service: str  # answers `path` behind the public listener
    callee: str  # the service it calls; its tasks answer ``TaskId: <id>``


REFERENCE_ROUTES = {
    "internal load balancer": ReferenceRoute(
        "/api/private-with-alb", "backend-public", "backend-private-with-alb"
    ),
    "service discovery": ReferenceRoute("/api/private", "backend-public", "backend-private"),
}

# Errors a check can meet on the network; they fail the point, with the error as evidence.
CHECK_ERRORS = (aiohttp.ClientError, OSError, TimeoutError, dns.exception.DNSException)


async def run_points(spec: Spec, world: World, *, calls: int = CALLS) -> list[Point]:
    """Check the seven points against ``world``."""
    points = [await guard(Point(1, TITLES[1]), world.image_pulls)]
    public = world.public
    if public is None:
        reason = "the spec has no load balancer with an HTTPS listener"
        return points + [Point(n, TITLES[n]).done(False, reason=reason) for n in range(2, 8)]

    connector = aiohttp.TCPConnector(ssl=world.ssl_context, force_close=True)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        alb = REFERENCE_ROUTES["internal load balancer"]
        discovery = REFERENCE_ROUTES["service discovery"]
        via_alb = via_discovery = None
        alb_skip = _not_applicable(spec, public.listener, alb)
        discovery_skip = _not_applicable(spec, public.listener, discovery)
        if alb_skip is None:
            via_alb = await _task_ids(session, public, alb.path, calls)
        if discovery_skip is None:
            via_discovery = await _task_ids(session, public, discovery.path, calls)

        def reachable(number: int, calls: dict[str, Any] | None, skip: str | None) -> Point:
            point = Point(number, TITLES[number])
            return _reachable(point, calls) if calls is not None else point.skip(skip or "")

        points.append(reachable(2, via_alb, alb_skip))
        points.append(reachable(3, via_discovery, discovery_skip))
        point4 = Point(4, TITLES[4])
        if via_alb is None or alb_skip:
            points.append(point4.skip(alb_skip or ""))
        else:
            points.append(_balanced(point4, via_alb, world.desired(alb.callee)))
        point5 = Point(5, TITLES[5])
        if via_discovery is None or discovery_skip:
            points.append(point5.skip(discovery_skip or ""))
        else:
            checked = via_discovery
            points.append(
                await guard(
                    point5,
                    lambda p: _discovery_balanced(p, spec, world, discovery.callee, checked),
                )
            )
        points.append(
            await guard(Point(6, TITLES[6]), lambda p: check_rules(p, spec, world, session, public))
        )
        points.append(
            await guard(
                Point(7, TITLES[7]),
                lambda p: check_tls(p, session, public, world.ssl_context, world.trusted),
            )
        )
    return points


async def guard(point: Point, check: Callable[[Point], Awaitable[Point]]) -> Point:
    """Run a check; a network error fails the point with the error as its evidence."""
    try:
        return await check(point)
    except CHECK_ERRORS as err:
        return point.done(False, error=f"{type(err).__name__}: {err}".rstrip(": "))


def _not_applicable(spec: Spec, listener: Listener, route: ReferenceRoute) -> str | None:
    """Why the reference route cannot be called on this spec, or None if it can."""
    missing = [name for name in (route.entry_service, route.callee) if name not in spec.services]
    if missing:
        return (
            f"not applicable to this spec: it checks the reference system's route "
            f"{route.path} ({route.entry_service} calling {route.callee}), and the spec has "
            f"no service {' or '.join(missing)}"
        )
    groups = {group for group, _ in decide(listener, Request(path=route.path)).target_groups}
    if not groups & set(spec.services[route.entry_service].target_groups):
        return (
            f"not applicable to this spec: the public listener does not forward {route.path} "
            f"to {route.entry_service}"
        )
    return None


async def _task_ids(
    session: aiohttp.ClientSession, public: PublicListener, path: str, calls: int
) -> dict[str, Any]:
    url = public.https_url + path
    seen: collections.Counter[str] = collections.Counter()
    failures: list[str] = []
    started = time.perf_counter()
    for _ in range(calls):
        try:
            async with session.get(
                url, headers=public.headers(), server_hostname=public.server_name
            ) as response:
                body = (await response.text()).strip()
                if response.status == 200 and body.startswith("TaskId:"):
                    seen[body.removeprefix("TaskId:").strip()] += 1
                else:
                    failures.append(f"{response.status} {body[:80]}")
        except CHECK_ERRORS as err:
            failures.append(f"{type(err).__name__}: {err}")
    return {
        "url": url,
        "calls": calls,
        "task_ids": dict(seen),
        "failures": failures[:5],
        "failed": len(failures),
        "seconds": round(time.perf_counter() - started, 3),
    }


def _reachable(point: Point, calls: dict[str, Any]) -> Point:
    return point.done(calls["failed"] == 0 and bool(calls["task_ids"]), **calls)


def _balanced(point: Point, calls: dict[str, Any], desired: int) -> Point:
    distinct = len(calls["task_ids"])
    return point.done(
        calls["failed"] == 0 and distinct >= min(2, desired) and desired > 0,
        distinct_tasks=distinct,
        desired_tasks=desired,
        **calls,
    )


async def _discovery_balanced(
    point: Point, spec: Spec, world: World, owner: str, calls: dict[str, Any]
) -> Point:
    discovery = spec.discovery
    service_name = spec.services[owner].discovery
    if discovery is None or service_name is None:
        return point.skip(f"not applicable to this spec: {owner} has no discovery service")
    name = discovery.fqdn(service_name)
    answers = await world.discovery_answers(point, name)
    records = {r for a in answers for r in a["records"]}
    orders = {tuple(a["records"]) for a in answers}
    desired = world.desired(owner)
    passed = (
        len(records) >= min(2, desired)
        and len(calls["task_ids"]) >= min(2, desired)
        and calls["failed"] == 0
    )
    return point.done(
        passed,
        name=name,
        answers=answers,
        distinct_orders=len(orders),
        distinct_tasks=len(calls["task_ids"]),
        **calls,
    )
