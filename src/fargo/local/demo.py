"""``fargo demo``: the seven demonstration points, checked against the running twin.

Each point reports pass, fail or skipped with its evidence: which tasks answered over
N calls, the DNS answer, the certificate, the rule that routed each request. An error
on the way (refused connection, DNS timeout, TLS failure) fails that point with the
error as evidence; the other points still run.

Points 2–5 call the reference system's routes (`REFERENCE_ROUTES`) and are skipped as
not applicable when the spec has no such service or route. Point 6 is derived from
the spec: for every rule of the public HTTPS listener (and its default action) it
makes a request that the rule matches and checks where the answer came from, using
the task logs of the target group's services.
"""

from __future__ import annotations

import asyncio
import collections
import secrets
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import dns.asyncquery
import dns.exception
import dns.message
import dns.rdatatype

from fargo.local.routing import Decision, Request, condition_matches, decide
from fargo.spec import Spec
from fargo.spec.elb import Listener, ListenerRule

CALLS = 20
REQUEST_TIMEOUT_SECONDS = 10.0
# The services log a request within their flush interval (service_kit: 0.2 s).
LOG_WAIT_SECONDS = 2.0
# A forward to a target group without targets: the ALB answers 503.
NO_TARGETS_STATUS = 503
ALB_ERROR_STATUSES = frozenset({502, 503, 504})
# The demo's requests come from the loopback address the load balancers listen on.
DEMO_SOURCE_IP = "127.0.0.1"


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

    def skip(self, reason: str) -> Point:
        self.status = "skipped"
        self.evidence["reason"] = reason
        return self


@dataclass(frozen=True)
class PublicListener:
    """The HTTPS listener the demo calls, and the HTTP one beside it (if any)."""

    https_url: str
    listener: Listener
    http_url: str = ""
    http_listener: Listener | None = None


async def run_demo(spec: Spec, status: dict[str, Any], *, calls: int = CALLS) -> list[Point]:
    endpoints = status["endpoints"]
    public = _public_listener(spec, endpoints["load_balancers"])
    points = [
        Point(1, "task pulls its image through the NAT Gateway").skip(
            "needs VPC mode (network namespaces and NAT); the twin runs in "
            "loopback mode, where a task 'pulls' its image from the local registry"
        )
    ]
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

    ssl_context = ssl.create_default_context(cafile=endpoints["ca_certificate"])
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
                    lambda p: _discovery_balanced(p, spec, status, discovery.callee, checked),
                )
            )
        points.append(
            await _guard(Point(6, titles[6]), lambda p: _rules(p, spec, status, session, public))
        )
        points.append(
            await _guard(Point(7, titles[7]), lambda p: _tls(p, session, public, ssl_context))
        )
    return points


async def _guard(point: Point, check: Callable[[Point], Awaitable[Point]]) -> Point:
    """Run a check; a network error fails the point with the error as its evidence."""
    try:
        return await check(point)
    except CHECK_ERRORS as err:
        return point.done(False, error=f"{type(err).__name__}: {err}".rstrip(": "))


def _public_listener(spec: Spec, urls: dict[str, list[str]]) -> PublicListener | None:
    """The first HTTPS listener, internet-facing load balancers first."""
    ordered = sorted(
        spec.load_balancers.items(), key=lambda item: item[1].scheme != "internet-facing"
    )
    for name, lb in ordered:
        pairs = list(zip(lb.listeners, urls.get(name, []), strict=False))
        https = next(((lst, url) for lst, url in pairs if lst.protocol == "HTTPS"), None)
        if https is None:
            continue
        http = next(((lst, url) for lst, url in pairs if lst.protocol == "HTTP"), None)
        return PublicListener(
            https_url=https[1],
            listener=https[0],
            http_url=http[1] if http else "",
            http_listener=http[0] if http else None,
        )
    return None


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


async def _discovery_balanced(
    point: Point, spec: Spec, status: dict[str, Any], owner: str, calls: dict[str, Any]
) -> Point:
    discovery = spec.discovery
    service_name = spec.services[owner].discovery
    if discovery is None or service_name is None:
        return point.skip(f"not applicable to this spec: {owner} has no discovery service")
    name = discovery.fqdn(service_name)
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


# -- point 6: rules ----------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """A request made to match one rule (or none: the default action)."""

    for_rule: int | None
    request: Request


def samples(
    listener: Listener, token: str, host: str = "localhost"
) -> tuple[list[Sample], list[dict[str, Any]]]:
    """A request per rule that its conditions match, plus one for the default action.

    Returns the samples and the rules no request could be made for (with the reason).
    """
    made: list[Sample] = []
    unmade: list[dict[str, Any]] = []
    for rule in listener.rules_by_priority():
        request = _sample_request(rule, token, host)
        if isinstance(request, str):
            unmade.append({"rule": rule.priority, "reason": request})
        else:
            made.append(Sample(rule.priority, request))
    default = Request(path=f"/fargo-demo-{token}-default", host=host)
    if decide(listener, default).priority is None:
        made.append(Sample(None, default))
    else:
        unmade.append({"rule": "default", "reason": f"{default.path} matches a rule"})
    return made, unmade


def _sample_request(rule: ListenerRule, token: str, host: str) -> Request | str:
    """A request every condition of the rule matches, or why none can be made here."""
    method, path, query = "GET", f"/fargo-demo-{token}", ""
    headers: list[tuple[str, str]] = []
    for condition in rule.conditions:
        if condition.path_pattern:
            path = _fill(condition.path_pattern[0], f"fargo-demo-{token}")
        elif condition.host_header:
            host = _fill(condition.host_header[0], "demo")
        elif condition.http_header is not None:
            header = condition.http_header
            headers.append((header.name, _fill(header.values[0], "demo")))
        elif condition.http_request_method:
            method = condition.http_request_method[0]
        elif condition.query_string:
            pair = condition.query_string[0]
            key = _fill(pair.key, "demo") if pair.key else "fargo-demo"
            query = f"{quote(key)}={quote(_fill(pair.value, 'demo'))}"
        elif condition.source_ip and not condition_matches(
            condition, Request(source_ip=DEMO_SOURCE_IP)
        ):
            return f"needs a request from {', '.join(condition.source_ip)}"
    return Request(method=method, path=path, query=query, host=host, headers=tuple(headers))


def _fill(pattern: str, filler: str) -> str:
    """A value the ALB pattern matches: ``*`` → filler, ``?`` → ``x``; ``\\*`` stays literal."""
    out: list[str] = []
    escaped = False
    for char in pattern:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "*":
            out.append(filler)
        elif char == "?":
            out.append("x")
        else:
            out.append(char)
    return "".join(out)


async def _rules(
    point: Point,
    spec: Spec,
    status: dict[str, Any],
    session: aiohttp.ClientSession,
    public: PublicListener,
) -> Point:
    host = urlsplit(public.https_url).hostname or "localhost"
    made, unmade = samples(public.listener, secrets.token_hex(4), host)
    routed = []
    for sample in made:
        decision = decide(public.listener, sample.request)
        routed.append(await _route_one(sample, decision, spec, status, session, public.https_url))
    return point.done(
        all(r["passed"] for r in routed),
        listener=f"{public.listener.protocol}:{public.listener.port} ({public.https_url})",
        requests=routed,
        **({"rules_not_sampled": unmade} if unmade else {}),
    )


async def _route_one(
    sample: Sample,
    decision: Decision,
    spec: Spec,
    status: dict[str, Any],
    session: aiohttp.ClientSession,
    base_url: str,
) -> dict[str, Any]:
    request = sample.request
    target = request.path + (f"?{request.query}" if request.query else "")
    headers = dict(request.headers)
    if request.host != urlsplit(base_url).hostname:
        headers["Host"] = request.host
    logs = _task_logs(status)
    offsets = {path: _size(path) for path in logs}
    async with session.request(
        request.method, base_url + target, headers=headers, allow_redirects=False
    ) as response:
        body = (await response.text())[:200]
        answer_status = response.status
        location = response.headers.get("Location")
    result: dict[str, Any] = {
        "for_rule": "default" if sample.for_rule is None else sample.for_rule,
        "request": f"{request.method} {target}"
        + (f" (Host: {request.host})" if "Host" in headers else "")
        + "".join(f" ({k}: {v})" for k, v in request.headers),
        "rule": decision.describe(),
        "status": answer_status,
        "body": body.split("\n")[0][:80],
    }
    action = decision.action
    if action.fixed_response is not None:
        fixed = action.fixed_response
        result["passed"] = (
            answer_status == fixed.status_code
            and body.strip() == (fixed.message_body.strip()[:200])
        )
    elif action.redirect is not None:
        expected = int(action.redirect.status_code.removeprefix("HTTP_"))
        result["location"] = location
        result["passed"] = answer_status == expected and bool(location)
    else:
        groups = [group for group, _ in decision.target_groups]
        result.update(
            await _answered_by(spec, status, groups, logs, offsets, request.path, answer_status)
        )
    return result


async def _answered_by(
    spec: Spec,
    status: dict[str, Any],
    groups: list[str],
    logs: dict[Path, str],
    offsets: dict[Path, int],
    path: str,
    answer_status: int,
) -> dict[str, Any]:
    """Which task's log shows the request: one of the target groups' services, or not."""
    expected = sorted({n for n, s in spec.services.items() if set(s.target_groups) & set(groups)})
    described = status["load_balancers"].get("target_groups", {})
    targets = sum(len(described.get(g, {}).get("targets", [])) for g in groups)
    if targets == 0:
        return {
            "expected": f"{NO_TARGETS_STATUS} (no target registered in {', '.join(groups)})",
            "passed": answer_status == NO_TARGETS_STATUS,
        }
    deadline = time.monotonic() + LOG_WAIT_SECONDS
    needle = path.encode()
    while True:
        for log, task in logs.items():
            if needle in _read_from(log, offsets[log]):
                service = log.parent.name
                return {
                    "expected": f"a task of {', '.join(expected)}",
                    "answered_by": task,
                    "passed": service in expected and answer_status not in ALB_ERROR_STATUSES,
                }
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.1)
    return {
        "expected": f"a task of {', '.join(expected)}",
        "answered_by": "unknown: no task logged the request (does the service log requests?)",
        "passed": answer_status not in ALB_ERROR_STATUSES,
    }


def _task_logs(status: dict[str, Any]) -> dict[Path, str]:
    """Every task's log file → ``service/task-id``."""
    return {
        Path(task["log"]): f"{service['name']}/{task['id']}"
        for service in status["services"]
        for task in service["tasks"]
        if task.get("log")
    }


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            return handle.read()
    except OSError:
        return b""


# -- point 7: TLS ------------------------------------------------------------------------


async def _tls(
    point: Point, session: aiohttp.ClientSession, public: PublicListener, context: ssl.SSLContext
) -> Point:
    parts = urlsplit(public.https_url)
    host, port = parts.hostname or "localhost", parts.port or 443
    loop = asyncio.get_running_loop()
    certificate, version, cipher = await loop.run_in_executor(None, _handshake, host, port, context)
    redirect: dict[str, Any] = {}
    redirects = (
        public.http_listener is not None
        and public.http_listener.default_action.redirect is not None
    )
    if redirects and public.http_listener is not None:
        expected = public.http_listener.default_action.redirect
        url = public.http_url + "/fargo-demo"
        async with session.get(url, allow_redirects=False) as response:
            redirect = {
                "url": url,
                "status": response.status,
                "location": response.headers.get("Location"),
            }
        wanted = int(expected.status_code.removeprefix("HTTP_")) if expected else 301
        redirect_ok = redirect["status"] == wanted and bool(redirect["location"])
    else:
        redirect_ok = True
    subject = dict(x[0] for x in certificate["subject"])
    issuer = dict(x[0] for x in certificate["issuer"])
    return point.done(
        version in {"TLSv1.2", "TLSv1.3"} and redirect_ok,
        subject=subject,
        issuer=issuer,
        not_before=certificate["notBefore"],
        not_after=certificate["notAfter"],
        names=[v for _, v in certificate.get("subjectAltName", ())],
        tls_version=version,
        cipher=cipher,
        verified_against="the twin's CA",
        redirect=redirect or "the HTTP listener does not redirect",
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
            if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                lines.append(f"     {key}:")
                lines += [f"       - {_one_line(item)}" for item in value]
            else:
                lines.append(f"     {key}: {value}")
    passed = sum(p.status == "pass" for p in points)
    lines.append(
        f"{passed} of {len(points)} points pass"
        f" ({sum(p.status == 'skipped' for p in points)} skipped)"
    )
    return "\n".join(lines)


def _one_line(item: dict[str, Any]) -> str:
    return ", ".join(f"{key}: {value}" for key, value in item.items())


def as_json(points: list[Point]) -> list[dict[str, Any]]:
    return [asdict(p) for p in points]
