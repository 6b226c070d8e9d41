"""``fargo demo``: the seven demonstration points, checked against the running twin.

Each point reports pass or fail with its evidence: which tasks answered over N
calls, the DNS answer, the certificate, the rule that routed each request.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import ssl
import time
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import dns.asyncquery
import dns.message
import dns.rdatatype

from fargo.spec import Spec

CALLS = 20


@dataclass
class Point:
    number: int
    title: str
    status: str = "fail"  # pass | fail | skipped
    evidence: dict[str, Any] = field(default_factory=dict)

    def done(self, passed: bool, **evidence: Any) -> Point:
        self.status = "pass" if passed else "fail"
        self.evidence.update(evidence)
        return self


async def run_demo(spec: Spec, status: dict[str, Any], *, calls: int = CALLS) -> list[Point]:
    endpoints = status["endpoints"]
    https_url, http_url = _public_urls(endpoints["load_balancers"])
    ssl_context = ssl.create_default_context(cafile=endpoints["ca_certificate"])
    connector = aiohttp.TCPConnector(ssl=ssl_context, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        via_alb = await _task_ids(session, f"{https_url}/api/private-with-alb", calls)
        via_discovery = await _task_ids(session, f"{https_url}/api/private", calls)
        points = [
            Point(
                1,
                "task pulls its image through the NAT Gateway",
                "skipped",
                {
                    "reason": "needs VPC mode (network namespaces and NAT); the twin runs in "
                    "loopback mode, where a task 'pulls' its image from the local registry"
                },
            ),
            _reachable(Point(2, "service to service through the internal load balancer"), via_alb),
            _reachable(
                Point(3, "service to service through Cloud Map service discovery"), via_discovery
            ),
            _balanced(
                Point(4, "the load balancer balances across a service's tasks"),
                via_alb,
                _desired(status, "backend-private-with-alb"),
            ),
            await _discovery_balanced(spec, status, via_discovery),
            await _rules(spec, session, https_url),
            await _tls(session, https_url, http_url, ssl_context),
        ]
    return points


def _public_urls(load_balancers: dict[str, list[str]]) -> tuple[str, str]:
    for urls in load_balancers.values():
        https = next((u for u in urls if u.startswith("https://")), None)
        if https:
            http = next((u for u in urls if u.startswith("http://")), "")
            return https, http
    raise RuntimeError("the spec has no load balancer with an HTTPS listener")


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
        except aiohttp.ClientError as err:
            failures.append(f"{type(err).__name__}: {err}")
    return {
        "url": url,
        "calls": calls,
        "task_ids": dict(seen),
        "failures": failures[:5],
        "failed": len(failures),
        "seconds": round(time.perf_counter() - started, 3),
    }


def _desired(status: dict[str, Any], service: str) -> int:
    return next((s["desired"] for s in status["services"] if s["name"] == service), 0)


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


async def _discovery_balanced(spec: Spec, status: dict[str, Any], calls: dict[str, Any]) -> Point:
    point = Point(5, "service discovery balances across a service's tasks (MULTIVALUE DNS)")
    discovery = spec.discovery
    if discovery is None or not discovery.services:
        return point.done(False, reason="the spec has no discovery service")
    name = discovery.fqdn(discovery.services[0].name)
    owner = next(
        (n for n, s in spec.services.items() if s.discovery == discovery.services[0].name), ""
    )
    host, port = status["endpoints"]["discovery_dns_server"].rsplit(":", 1)
    answers: list[dict[str, Any]] = []
    for _ in range(3):
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


async def _rules(spec: Spec, session: aiohttp.ClientSession, https_url: str) -> Point:
    from fargo.local.routing import Request, decide

    point = Point(6, "the load balancer routes by rules")
    listener = next(
        (
            lst
            for lb in spec.load_balancers.values()
            for lst in lb.listeners
            if lst.protocol == "HTTPS"
        ),
        None,
    )
    if listener is None:
        return point.done(False, reason="no HTTPS listener")
    routed = []
    ok = True
    for path, expect in (("/api/public", "Hello world"), ("/", "<"), ("/api/unknown", "")):
        decision = decide(listener, Request(path=path, host=urlsplit(https_url).hostname or ""))
        async with session.get(https_url + path) as response:
            body = (await response.text())[:60]
        matched = body.startswith(expect) if expect else response.status == 404
        ok = ok and matched
        routed.append(
            {
                "path": path,
                "rule": decision.describe(),
                "status": response.status,
                "body": body.split("\n")[0],
            }
        )
    return point.done(ok, requests=routed)


async def _tls(
    session: aiohttp.ClientSession, https_url: str, http_url: str, context: ssl.SSLContext
) -> Point:
    point = Point(7, "an SSL/TLS certificate is attached to the load balancer")
    parts = urlsplit(https_url)
    host, port = parts.hostname or "localhost", parts.port or 443
    loop = asyncio.get_running_loop()
    certificate, version, cipher = await loop.run_in_executor(None, _handshake, host, port, context)
    redirect: dict[str, Any] = {}
    if http_url:
        async with session.get(http_url + "/api/public", allow_redirects=False) as response:
            redirect = {
                "url": http_url + "/api/public",
                "status": response.status,
                "location": response.headers.get("Location"),
            }
    subject = dict(x[0] for x in certificate["subject"])
    issuer = dict(x[0] for x in certificate["issuer"])
    passed = version in {"TLSv1.2", "TLSv1.3"} and (not redirect or redirect["status"] == 301)
    return point.done(
        passed,
        subject=subject,
        issuer=issuer,
        not_before=certificate["notBefore"],
        not_after=certificate["notAfter"],
        names=[v for _, v in certificate.get("subjectAltName", ())],
        tls_version=version,
        cipher=cipher,
        verified_against="the twin's CA",
        redirect=redirect,
    )


def _handshake(host: str, port: int, context: ssl.SSLContext) -> tuple[dict[str, Any], str, str]:
    with (
        socket.create_connection((host, port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        cipher = tls.cipher()
        return tls.getpeercert() or {}, tls.version() or "", cipher[0] if cipher else ""


def render(points: list[Point]) -> str:
    lines = []
    for point in points:
        lines.append(f"{point.number}. [{point.status.upper()}] {point.title}")
        for key, value in point.evidence.items():
            lines.append(f"     {key}: {value}")
    passed = sum(p.status == "pass" for p in points)
    lines.append(
        f"{passed} of {len(points)} points pass"
        f" ({sum(p.status == 'skipped' for p in points)} skipped)"
    )
    return "\n".join(lines)


def as_json(points: list[Point]) -> list[dict[str, Any]]:
    return [asdict(p) for p in points]
