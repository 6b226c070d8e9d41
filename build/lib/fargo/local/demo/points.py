"""``fargo demo``: the seven demonstration points, checked against the running twin.

Each point reports pass, fail or skipped with its evidence: which tasks answered over
N calls, the DNS answer, the certificate, the rule that routed each request. An error
on the way (refused connection, DNS timeout, TLS failure) fails that point with the
error as evidence; the other points still run.

Points 2–5 call the reference system's routes (`REFERENCE_ROUTES`) and are skipped as
not applicable when the spec has no such service or route. Point 6 is derived from
the spec: for every rule of the public HTTPS listener (and its default action) it
makes a request that the rule matches and checks where the answer came from, using
the task logs of the target group's services (`fargo.local.demo.rules`); point 7 is a
TLS handshake (`fargo.local.demo.tls`). The sample requests are made in
`fargo.local.demo.requests`, the report drawn in `fargo.local.demo.report`.
"""

from __future__ import annotations

import collections
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import dns.asyncquery
import dns.exception
import dns.message
import dns.rdatatype

from fargo.local.control.api import ControlClient
from fargo.local.demo.report import Point as Point
from fargo.local.demo.report import as_json as as_json
from fargo.local.demo.report import render as render
from fargo.local.demo.requests import public_listener
from fargo.local.demo.requests import samples as samples
from fargo.local.demo.rules import check_rules
from fargo.local.demo.tls import check_tls
from fargo.local.status import TwinStatus
from fargo.spec import Spec
from fargo.spec.elb import Listener, Request
from fargo.spec.routing import decide

CALLS = 20
REQUEST_TIMEOUT_SECONDS = 10.0


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


async def run_demo(
    spec: Spec, status: TwinStatus, *, calls: int = CALLS, control: ControlClient | None = None
) -> list[Point]:
    endpoints = status.endpoints
    public = public_listener(spec, endpoints.load_balancers)
    inside = control if status.network_mode == "vpc" else None  # asks from inside the VPC
    point1 = Point(1, "task pulls its image through the NAT Gateway")
    if inside is None:
        point1.skip(
            "needs VPC mode (network namespaces and NAT); the twin runs in "
            f"{status.network_mode} mode, where a task pulls its image over the host's loopback"
        )
    else:
        point1 = await _guard(point1, lambda p: _pulled_through_nat(p, inside))
    points = [point1]
    titles = {
        2: "service to service through the internal load balancer",
        3: "service to service through Cloud Map service discovery",
        4: "the load balancer balances across a service's tasks",
        5: "service discovery balances across a service's tasks (MULTIVALUE DNS)",
        6: "the load balancer routes by rules",
        7: "an SSL/TLS certificate is attached to the load balancer",
    }
    if public is None:
        reason = "the spec has no load balancer with an HTTPS listener"
        return points + [Point(n, title).done(False, reason=reason) for n, title in titles.items()]

    ssl_context = ssl.create_default_context(cafile=endpoints.ca_certificate)
    connector = aiohttp.TCPConnector(ssl=ssl_context, force_close=True)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        alb = REFERENCE_ROUTES["internal load balancer"]
        discovery = REFERENCE_ROUTES["service discovery"]
        via_alb = via_discovery = None
        alb_skip = _not_applicable(spec, public.listener, alb)
        discovery_skip = _not_applicable(spec, public.listener, discovery)
        if alb_skip is None:
            via_alb = await _task_ids(session, public.https_url + alb.path, calls)
        if discovery_skip is None:
            via_discovery = await _task_ids(session, public.https_url + discovery.path, calls)

        def reachable(number: int, calls: dict[str, Any] | None, skip: str | None) -> Point:
            point = Point(number, titles[number])
            return _reachable(point, calls) if calls is not None else point.skip(skip or "")

        points.append(reachable(2, via_alb, alb_skip))
        points.append(reachable(3, via_discovery, discovery_skip))
        point4 = Point(4, titles[4])
        if via_alb is None or alb_skip:
            points.append(point4.skip(alb_skip or ""))
        else:
            points.append(_balanced(point4, via_alb, _desired(status, alb.callee)))
        point5 = Point(5, titles[5])
        if via_discovery is None or discovery_skip:
            points.append(point5.skip(discovery_skip or ""))
        else:
            checked = via_discovery
            points.append(
                await _guard(
                    point5,
                    lambda p: _discovery_balanced(
                        p, spec, status, discovery.callee, checked, inside
                    ),
                )
            )
        points.append(
            await _guard(
                Point(6, titles[6]), lambda p: check_rules(p, spec, status, session, public)
            )
        )
        points.append(
            await _guard(Point(7, titles[7]), lambda p: check_tls(p, session, public, ssl_context))
        )
    return points


async def _guard(point: Point, check: Callable[[Point], Awaitable[Point]]) -> Point:
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


async def _task_ids(session: aiohttp.ClientSession, url: str, calls: int) -> dict[str, Any]:
    seen: collections.Counter[str] = collections.Counter()
    failures: list[str] = []
    started = time.perf_counter()
    for _ in range(calls):
        try:
            async with session.get(url) as response:
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


def _desired(status: TwinStatus, service: str) -> int:
    return next((s.desired for s in status.services if s.name == service), 0)


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
    point: Point,
    spec: Spec,
    status: TwinStatus,
    owner: str,
    calls: dict[str, Any],
    inside: ControlClient | None,
) -> Point:
    discovery = spec.discovery
    service_name = spec.services[owner].discovery
    if discovery is None or service_name is None:
        return point.skip(f"not applicable to this spec: {owner} has no discovery service")
    name = discovery.fqdn(service_name)
    host, port = status.endpoints.discovery_dns_server.rsplit(":", 1)
    answers: list[dict[str, Any]] = []
    if inside is not None:  # the VPC's DNS server answers inside the VPC only
        asked = await inside.get(f"/evidence/dns?name={name}")
        answers = asked["answers"]
        point.evidence["asked_from"] = asked["asked_from"]
    for _ in range(0 if inside is not None else 3):
        response = await dns.asyncquery.udp(
            dns.message.make_query(name, dns.rdatatype.A), host, port=int(port), timeout=2
        )
        for rrset in response.answer:
            answers.append({"ttl": rrset.ttl, "records": [r.to_text() for r in rrset]})
    records = {r for a in answers for r in a["records"]}
    orders = {tuple(a["records"]) for a in answers}
    desired = _desired(status, owner)
    passed = (
        len(records) >= min(2, desired)
        and len(calls["task_ids"]) >= min(2, desired)
        and calls["failed"] == 0
    )
    return point.done(
        passed,
        name=name,
        dns_server=f"{host}:{port}",
        answers=answers,
        distinct_orders=len(orders),
        distinct_tasks=len(calls["task_ids"]),
        **calls,
    )


async def _pulled_through_nat(point: Point, control: ControlClient) -> Point:
    """Every private task's image pull reached the registry from a NAT gateway's Elastic IP
    (never from the task's own address), and the internet side cannot open the task."""
    evidence = await control.get("/evidence/image-pulls")
    elastic_ips = set(evidence["nat_gateways"].values())
    tasks = evidence["tasks"]
    problems = []
    for task in tasks:
        saw = set(task["registry_saw"])
        if not saw or not saw <= elastic_ips:
            problems.append(f"{task['task']}: the registry saw {sorted(saw)}, not a NAT's EIP")
        if task["from_internet"] == "connected":
            problems.append(f"{task['task']}: reachable from the internet side")
    passed = bool(tasks) and not problems
    return point.done(
        passed,
        nat_gateways=evidence["nat_gateways"],
        registry=evidence["registry"],
        tasks=[
            {
                "task": t["task"][:12],
                "service": t["service"],
                "private_ip": t["private_ip"],
                "registry_saw": ", ".join(t["registry_saw"]),
                "digest": t["digest"][:19],
                "from_internet": t["from_internet"],
            }
            for t in tasks
        ],
        route=tasks[0]["route"] if tasks else [],
        **({"problems": problems} if problems else {}),
        **({} if tasks else {"reason": "no running task in a private subnet"}),
    )
