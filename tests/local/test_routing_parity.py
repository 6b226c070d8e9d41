"""Parity: real Caddy, configured from a spec with many rules, picks what `routing.decide` picks.

Each target group is a backend that answers its own name; every request of the corpus
goes through the twin's load balancer and through `decide`, and the answers must agree.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import aiohttp
import pytest
import yarl
from aiohttp import web
from multidict import CIMultiDict
from tests.local.conftest import balancer_spec, caddy_elb, free_port, loopback

from fargo.local.elb.load_balancing import ElasticLoadBalancing, Target
from fargo.spec.elb import Request
from fargo.spec.model import Spec
from fargo.spec.routing import Decision, decide

pytestmark = pytest.mark.timeout(60)

GROUPS = [
    "fallback", "api", "versioned", "admin", "canary", "writes", "query", "source",
    "both", "qand", "host", "literal", "glob", "multi",
]  # fmt: skip


def spec_for(client_ip: str) -> Spec:
    groups = "\n".join(f"  {g}: {{health_check: {{interval: 300, timeout: 120}}}}" for g in GROUPS)
    return balancer_spec(
        "parity",
        target_groups=groups,
        load_balancers=f"""
  public:
    scheme: internet-facing
    listeners:
      - port: 80
        protocol: HTTP
        default_action: {{forward: fallback}}
        rules:
          - priority: 10
            conditions: [{{path_pattern: ["/api/*"]}}]
            action: {{forward: api}}
          - priority: 5
            conditions: [{{path_pattern: ["/api/v?/items", "/API/*"]}}]
            action: {{forward: versioned}}
          - priority: 20
            conditions: [{{host_header: ["*.example.com"]}}, {{path_pattern: ["/admin*"]}}]
            action: {{forward: admin}}
          - priority: 30
            conditions: [{{http_header: {{name: X-Env, values: ["canary*", "beta"]}}}}]
            action: {{forward: canary}}
          - priority: 40
            conditions: [{{http_request_method: [POST, PUT]}}]
            action: {{forward: writes}}
          - priority: 50
            conditions: [{{query_string: [{{key: version, value: v1}}, {{value: debug}}]}}]
            action: {{forward: query}}
          - priority: 60
            conditions: [{{source_ip: ["{client_ip}/32"]}}, {{path_pattern: ["/src*"]}}]
            action: {{forward: source}}
          - priority: 70
            conditions:
              - http_header: {{name: X-A, values: ["1"]}}
              - http_header: {{name: X-B, values: ["2*"]}}
            action: {{forward: both}}
          - priority: 80
            conditions:
              - query_string: [{{key: a, value: "1"}}]
              - query_string: [{{key: "b*", value: "*"}}]
            action: {{forward: qand}}
          - priority: 90
            conditions: [{{path_pattern: ["/fixed"]}}]
            action: {{fixed_response: {{status_code: 418, message_body: teapot}}}}
          - priority: 95
            conditions: [{{path_pattern: ["/old/*"]}}]
            action: {{redirect: {{path: "/new/#{{path}}", status_code: HTTP_302}}}}
          - priority: 100
            conditions: [{{host_header: ["exact.example.org", "h?st.example.net"]}}]
            action: {{forward: host}}
          - priority: 110
            conditions: [{{query_string: [{{key: q, value: 'a\\*b'}}]}}]
            action: {{forward: literal}}
          - priority: 120
            conditions: [{{path_pattern: ["*.css", "/static/*/img?.png"]}}]
            action: {{forward: glob}}
          - priority: 130
            conditions:
              - http_header: {{name: x-multi, values: ["*one*"]}}
              - http_request_method: [GET]
              - host_header: [multi.test]
            action: {{forward: multi}}
""",
    )


@dataclass(frozen=True)
class Case:
    path: str = "/"  # as sent (percent-encoded)
    query: str = ""
    method: str = "GET"
    host: str = "lb.test"
    headers: tuple[tuple[str, str], ...] = ()
    from_client_ip: bool = False


HANDWRITTEN = [
    Case("/api/x"),
    Case("/api/v1/items"),  # priority 5 before 10
    Case("/api/v10/items"),
    Case("/API/x"),
    Case("/Api/x"),  # case-sensitive
    Case("/api"),  # /api/* needs the slash
    Case("/apix/y"),
    Case("/api/a%20b/c"),
    Case("/admin", host="a.example.com"),
    Case("/administrator", host="x.y.example.com"),
    Case("/admin", host="example.com"),  # *.example.com needs a label
    Case("/admin", host="A.EXAMPLE.COM:8080"),
    Case("/admin", host="a.example.com."),  # a trailing dot does not bypass the rule
    Case("/admin", host="a.example.com.:8080"),
    Case("/admin", host="a.example.com.."),
    Case("/", headers=(("X-Env", "Canary-7"),)),
    Case("/", headers=(("x-env", "beta"),)),
    Case("/", headers=(("X-Env", "betas"),)),
    Case("/", headers=(("X-Env", "prod"), ("X-Env", "canary"))),  # any value of a repeated header
    Case("/", method="POST"),
    Case("/api/x", method="POST"),  # priority 10 first
    Case("/", method="DELETE"),
    Case("/", method="PATCH"),
    Case("/", "version=v1"),
    Case("/", "VERSION=V1"),  # query comparison is case-insensitive
    Case("/", "version=%76%31"),  # percent-encoded
    Case("/", "x=debug"),
    Case("/", "debug"),  # a bare key has an empty value
    Case("/", "version=v12"),
    Case("/src/x", from_client_ip=True),
    Case("/src/x"),
    Case("/other", from_client_ip=True),
    Case("/", headers=(("X-A", "1"), ("X-B", "2abc"))),
    Case("/", headers=(("X-A", "1"),)),
    Case("/", "a=1&bee=2"),
    Case("/", "b=2&a=1"),
    Case("/", "a=1"),
    Case("/", "a=1&b"),
    Case("/", "a=2&b=1"),
    Case("/fixed"),
    Case("/fixed/"),
    Case("/old/page", "x=1"),
    Case("/", host="exact.example.org"),
    Case("/", host="EXACT.example.org:8080"),
    Case("/", host="exact.example.org."),
    Case("/", host="host.example.net"),
    Case("/", host="hoost.example.net"),
    Case("/", "q=a*b"),
    Case("/", "q=a%2Ab"),
    Case("/", "q=aXb"),
    Case("/x/y.css"),
    Case("/x/y.CSS"),
    Case("/static/a/img1.png"),
    Case("/static/a/b/img1.png"),
    Case("/static/a/img12.png"),
    Case("/", host="multi.test", headers=(("X-Multi", "the ONE and only"),)),
    Case("/", host="multi.test", method="PUT", headers=(("X-Multi", "one"),)),
    Case("/", host="multi.test", headers=(("X-Multi", "none"),)),  # "none" has "one" in it
    Case("/", host="multi.test", headers=(("X-Multi", "two"),)),
]


def crossed() -> Iterator[Case]:
    """A broad product of paths, hosts, methods and queries."""
    paths = ["/", "/api/v2/items", "/admin/x", "/src", "/static/z/imgA.png", "/a.css"]
    hosts = ["lb.test", "app.example.com", "hast.example.net"]
    methods = ["GET", "PUT"]
    queries = ["", "a=1&b2=", "version=V1"]
    for path, host, method, query in itertools.product(paths, hosts, methods, queries):
        yield Case(path, query, method, host)


class Answering:
    """A backend answering its target group's name."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.runner: web.AppRunner | None = None

    async def start(self, port: int) -> Target:
        async def name(request: web.Request) -> web.Response:
            return web.Response(text=f"group={self.group}")

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", name)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        for _ in range(20):
            ip = loopback()
            try:
                await web.TCPSite(self.runner, ip, port).start()
                return Target(self.group, ip, port)
            except OSError:
                continue
        raise RuntimeError("no free address")


@dataclass
class Twin:
    elb: ElasticLoadBalancing
    url: str
    client_ip: str


@pytest.fixture
async def twin(state_dir: Path) -> AsyncIterator[Twin]:
    client_ip = loopback()
    spec = spec_for(client_ip)
    ip = loopback()
    port = free_port(ip)
    elb = caddy_elb(
        spec,
        state_dir=state_dir,
        bind={"public": ip},
        listener_port=lambda lb, _: port,
        certificate=None,
        time_scale=0.05,
    )
    backends = [Answering(g) for g in GROUPS]
    try:
        await elb.start()
        backend_port = random.randint(20000, 60000)
        for backend in backends:
            elb.register_targets(backend.group, [await backend.start(backend_port)])
        for group in GROUPS:
            await elb.wait_healthy(group)
        yield Twin(elb, f"http://{ip}:{port}", client_ip)
    finally:
        await elb.stop()
        for backend in backends:
            if backend.runner is not None:
                await backend.runner.cleanup()


def request_of(case: Case, client_ip: str) -> Request:
    """What `decide` sees of ``case``: from ``client_ip`` if the case says so, else 127.0.0.1."""
    return Request(
        method=case.method,
        path=unquote(case.path),
        query=case.query,
        host=case.host,
        headers=case.headers,
        source_ip=client_ip if case.from_client_ip else "127.0.0.1",
    )


def expected(decision: Decision) -> str:
    action = decision.action
    if action.fixed_response is not None:
        return f"fixed {action.fixed_response.status_code}"
    if action.redirect is not None:
        return f"redirect {action.redirect.status_code.removeprefix('HTTP_')}"
    ((group, _),) = decision.target_groups
    return f"group={group}"


async def observed(session: aiohttp.ClientSession, url: str, case: Case) -> str:
    target = url + case.path + (f"?{case.query}" if case.query else "")
    headers = CIMultiDict([("Host", case.host), *case.headers])
    async with session.request(
        case.method, yarl.URL(target, encoded=True), headers=headers, allow_redirects=False
    ) as response:
        body = await response.text()
        if response.status == 418:
            return "fixed 418"
        if response.status in (301, 302):
            return f"redirect {response.status}"
        assert response.status == 200, (case, response.status, body)
        return body


async def run_corpus(twin: Twin, cases: Sequence[Case]) -> list[str]:
    listener = twin.elb.spec.load_balancers["public"].listeners[0]
    mismatches = []
    async with (
        aiohttp.ClientSession() as plain,
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(local_addr=(twin.client_ip, 0))
        ) as from_client,
    ):
        for case in cases:
            want = expected(decide(listener, request_of(case, twin.client_ip)))
            session = from_client if case.from_client_ip else plain
            got = await observed(session, twin.url, case)
            if got != want:
                mismatches.append(f"{case}: caddy {got!r}, decide {want!r}")
    return mismatches


async def test_caddy_routes_like_decide(twin: Twin) -> None:
    assert await run_corpus(twin, HANDWRITTEN) == []


async def test_caddy_routes_like_decide_across_a_product(twin: Twin) -> None:
    cases = list(crossed())
    assert len(cases) == 108
    assert await run_corpus(twin, cases) == []


def test_the_corpus_reaches_every_rule_and_the_default() -> None:
    """A parity test that only ever hit the default action would prove nothing."""
    listener = spec_for("127.0.0.9").load_balancers["public"].listeners[0]
    reached = set()
    for case in [*HANDWRITTEN, *crossed()]:
        reached.add(decide(listener, request_of(case, "127.0.0.9")).priority)
    assert reached == {None, *(rule.priority for rule in listener.rules)}
