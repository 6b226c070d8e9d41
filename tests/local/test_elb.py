"""The twin's ALB over real sockets: real Caddy, real TLS, small aiohttp targets on 127.x."""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import socket
import ssl
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest
import yarl
from aiohttp import web
from tests.local.conftest import (
    balancer_spec,
    caddy_elb,
    caddy_of,
    client_context,
    free_port,
    loopback,
)
from tests.waiting import until

from fargo.local.acm.authority import CertificateAuthority
from fargo.local.caddy.data_plane import UNAVAILABLE_SOCKET
from fargo.local.caddy.process import CaddyError, CaddyProcess
from fargo.local.elb.load_balancing import (
    ElasticLoadBalancing,
    ListenerAddressInUse,
    Target,
    TargetState,
    ValidationError,
)
from fargo.local.status import DataPlaneState, DataPlaneStatus
from fargo.spec.model import Spec

pytestmark = pytest.mark.timeout(60)

DOMAIN = "fargo.example.com"
FAST = 0.05  # time_scale: 5 s interval -> 0.25 s, 30 s deregistration delay -> 1.5 s


# -- helpers --------------------------------------------------------------------------------


class Backend:
    """A target: answers its id, path and headers; ``/health`` answers ``health_status``.

    Targets of one test share a port on addresses of their own, like tasks of a service.
    """

    def __init__(self, name: str, port: int) -> None:
        self.name = name
        self.ip = loopback()
        self.port = port
        self.health_status = 200
        self.health_delay = 0.0
        self.failed_checks = 0  # health checks answered with another status than 200
        self.requests = 0
        self._runner: web.AppRunner | None = None

    @property
    def target(self) -> Target:
        return Target(self.name, self.ip, self.port)

    async def start(self) -> Backend:
        app = web.Application()
        app.router.add_route("*", "/health", self._health)
        app.router.add_route("*", "/{tail:.*}", self._echo)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        for _ in range(20):
            try:
                await web.TCPSite(self._runner, self.ip, self.port).start()
                return self
            except OSError:
                self.ip = loopback()
        raise RuntimeError(f"no address with port {self.port} free")

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _health(self, request: web.Request) -> web.Response:
        if self.health_delay:  # a slow target: the behaviour under test, not a wait
            await asyncio.sleep(self.health_delay)
        if self.health_status != 200:
            self.failed_checks += 1
        return web.Response(status=self.health_status, text="health")

    async def _echo(self, request: web.Request) -> web.Response:
        self.requests += 1
        delay = float(request.query.get("delay", "0"))
        if delay:  # a slow answer (?delay=): the behaviour under test, not a wait
            await asyncio.sleep(delay)
        return web.json_response(
            {
                "id": self.name,
                "method": request.method,
                "path_qs": request.raw_path,
                "headers": {k: v for k, v in request.headers.items()},
            }
        )


# Health checks that pass once and then rarely run again: for tests about routing.
QUIET = "{health_check: {path: /health, interval: 300, timeout: 120}, deregistration_delay: 30}"
# Health checks every 0.25 s (timeout 0.2 s) at FAST: for tests about target health.
BUSY = (
    "{health_check: {path: /health, interval: 5, timeout: 4, healthy_threshold: 2, "
    "unhealthy_threshold: 2}, deregistration_delay: 30}"
)


class Twin:
    """ElasticLoadBalancing on a fresh state folder, its addresses, and a client."""

    def __init__(self, spec: Spec, elb: ElasticLoadBalancing, ports: dict[int, int]) -> None:
        self.spec = spec
        self.elb = elb
        self.ports = ports
        self.ip = next(iter(elb.bind.values()))

    def url(self, spec_port: int, path: str = "/") -> str:
        scheme = "http"
        for lb in self.spec.load_balancers.values():
            for listener in lb.listeners:
                if listener.port == spec_port and listener.protocol == "HTTPS":
                    scheme = "https"
        return f"{scheme}://{self.ip}:{self.ports[spec_port]}{path}"


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    ca = CertificateAuthority(tmp_path_factory.mktemp("ca"))
    ca.ensure()
    return ca


@pytest.fixture(scope="module")
def certificate(
    authority: CertificateAuthority, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    issued = authority.issue(
        names=[DOMAIN, "localhost"], ip_addresses=[], directory=tmp_path_factory.mktemp("leaf")
    )
    return issued.certificate_path, issued.private_key_path


@pytest.fixture
def client_tls(authority: CertificateAuthority) -> ssl.SSLContext:
    return client_context(authority)


TwinFactory = Callable[..., Awaitable[Twin]]


@pytest.fixture
async def twin(state_dir: Path, certificate: tuple[Path, Path]) -> AsyncIterator[TwinFactory]:
    started: list[ElasticLoadBalancing] = []

    async def make(
        load_balancers: str,
        target_groups: str,
        *,
        on_unhealthy: Callable[[str, str], None] | None = None,
        time_scale: float = FAST,
    ) -> Twin:
        spec = balancer_spec("elbtest", load_balancers, target_groups)
        ip = loopback()
        ports = {
            listener.port: free_port(ip)
            for lb in spec.load_balancers.values()
            for listener in lb.listeners
        }
        elb = caddy_elb(
            spec,
            state_dir=state_dir,
            bind={name: ip for name in spec.load_balancers},
            listener_port=lambda lb, port: ports[port],
            certificate=certificate,
            time_scale=time_scale,
            on_unhealthy=on_unhealthy,
        )
        started.append(elb)
        await elb.start()
        return Twin(spec, elb, ports)

    yield make
    for elb in started:
        await elb.stop()


@pytest.fixture
async def backends() -> AsyncIterator[Callable[[str], Awaitable[Backend]]]:
    running: list[Backend] = []
    port = random.randint(20000, 60000)

    async def make(name: str) -> Backend:
        backend = await Backend(name, port).start()
        running.append(backend)
        return backend

    yield make
    for backend in running:
        await backend.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def get(
    session: aiohttp.ClientSession, url: str, **kwargs: Any
) -> tuple[int, dict[str, Any] | str, aiohttp.ClientResponse]:
    kwargs.setdefault("allow_redirects", False)
    method = kwargs.pop("method", "GET")
    # encoded=True: the URL goes out exactly as written (yarl would requote it)
    async with session.request(method, yarl.URL(url, encoded=True), **kwargs) as response:
        text = await response.text()
        body: dict[str, Any] | str = text
        if response.content_type == "application/json":
            body = await response.json()
        return response.status, body, response


async def target_of(session: aiohttp.ClientSession, url: str, **kwargs: Any) -> str:
    status, body, _ = await get(session, url, **kwargs)
    assert status == 200, (status, body)
    assert isinstance(body, dict)
    return str(body["id"])


def one_listener(rules: str = "", default: str = "{forward: a}", idle_timeout: int = 60) -> str:
    return f"""
  public:
    scheme: internet-facing
    idle_timeout: {idle_timeout}
    listeners:
      - port: 80
        protocol: HTTP
        default_action: {default}
        rules: {rules or "[]"}
"""


def https_listener(more_listeners: str = "") -> str:
    """``public`` with a certificate for DOMAIN and HTTPS:443 forwarding to ``a``, followed
    by ``more_listeners`` (YAML list items, indented as listeners)."""
    return f"""
  public:
    scheme: internet-facing
    certificate: {{domain: {DOMAIN}}}
    listeners:
      - port: 443
        protocol: HTTPS
        default_action: {{forward: a}}
{more_listeners}"""


def data_plane(twin: Twin) -> DataPlaneStatus:
    """The data plane as `ElasticLoadBalancing.describe` reports it (Caddy's pid, loads)."""
    (described,) = twin.elb.describe().data_planes
    return described


async def healthy(twin: Twin, group: str, *backends: Backend) -> None:
    twin.elb.register_targets(group, [b.target for b in backends])
    await twin.elb.wait_healthy(group, [b.name for b in backends])


async def twin_with_a_and_b(twin: TwinFactory, backends: Any, load_balancers: str) -> Twin:
    """The groups ``a`` and ``b`` (QUIET), each with one healthy target named like it."""
    t = await twin(load_balancers, f"  a: {QUIET}\n  b: {QUIET}")
    await healthy(t, "a", await backends("a"))
    await healthy(t, "b", await backends("b"))
    return t


# -- routing --------------------------------------------------------------------------------


async def test_rules_by_priority_then_default(
    twin: TwinFactory, backends: Any, http: aiohttp.ClientSession
) -> None:
    rules = """
          - priority: 20
            conditions: [{path_pattern: ["/api/*"]}]
            action: {forward: late}
          - priority: 3
            conditions: [{path_pattern: ["/api/v1/*"]}]
            action: {forward: early}
"""
    t = await twin(one_listener(rules), f"  a: {QUIET}\n  early: {QUIET}\n  late: {QUIET}")
    for group in ("a", "early", "late"):
        await healthy(t, group, await backends(group))
    assert await target_of(http, t.url(80, "/api/v1/x")) == "early"
    assert await target_of(http, t.url(80, "/api/v2/x")) == "late"
    assert await target_of(http, t.url(80, "/other")) == "a"


async def test_path_patterns_wildcards_case_and_full_path(
    twin: TwinFactory, backends: Any, http: aiohttp.ClientSession
) -> None:
    rules = """
          - priority: 1
            conditions: [{path_pattern: ["/img/*.png", "/v?/items"]}]
            action: {forward: b}
"""
    t = await twin_with_a_and_b(twin, backends, one_listener(rules))
    assert await target_of(http, t.url(80, "/img/cat.png")) == "b"
    assert await target_of(http, t.url(80, "/img/deep/cat.png")) == "b"  # * crosses '/'
    assert await target_of(http, t.url(80, "/v1/items")) == "b"
    assert await target_of(http, t.url(80, "/v10/items")) == "a"  # ? is exactly one
    assert await target_of(http, t.url(80, "/IMG/cat.png")) == "a"  # case-sensitive
    assert await target_of(http, t.url(80, "/img/cat.pngx")) == "a"  # the whole path
    assert await target_of(http, t.url(80, "/x/img/cat.png")) == "a"
    # the full path and query reach the target, no prefix stripped
    _, body, _ = await get(http, t.url(80, "/img/a%20b/c.png?x=1&y=%2F"))
    assert isinstance(body, dict) and body["id"] == "b"
    assert body["path_qs"] == "/img/a%20b/c.png?x=1&y=%2F"


async def test_host_header_rule(
    twin: TwinFactory, backends: Any, http: aiohttp.ClientSession
) -> None:
    rules = """
          - priority: 1
            conditions: [{host_header: ["*.example.com", "exact.example.org"]}]
            action: {forward: b}
"""
    t = await twin_with_a_and_b(twin, backends, one_listener(rules))
    url = t.url(80, "/")
    assert await target_of(http, url, headers={"Host": "api.example.com"}) == "b"
    assert await target_of(http, url, headers={"Host": "API.Example.COM:8080"}) == "b"
    assert await target_of(http, url, headers={"Host": "exact.example.org"}) == "b"
    assert await target_of(http, url, headers={"Host": "example.com"}) == "a"
    assert await target_of(http, url, headers={"Host": "x.exact.example.org"}) == "a"


async def test_header_method_query_and_source_ip_conditions(
    twin: TwinFactory, backends: Any, http: aiohttp.ClientSession
) -> None:
    client_ip = loopback()
    rules = f"""
          - priority: 1
            conditions: [{{http_header: {{name: X-Env, values: ["canary*", "beta"]}}}}]
            action: {{forward: header}}
          - priority: 2
            conditions: [{{http_request_method: [POST, PUT]}}]
            action: {{forward: method}}
          - priority: 3
            conditions: [{{query_string: [{{key: version, value: "v?"}}, {{value: debug}}]}}]
            action: {{forward: query}}
          - priority: 4
            conditions: [{{source_ip: ["{client_ip}/32"]}}]
            action: {{forward: source}}
"""
    groups = ["a", "header", "method", "query", "source"]
    t = await twin(one_listener(rules), "\n".join(f"  {g}: {QUIET}" for g in groups))
    for group in groups:
        await healthy(t, group, await backends(group))
    url = t.url(80, "/")
    assert await target_of(http, url, headers={"x-env": "CANARY-7"}) == "header"
    assert await target_of(http, url, headers={"X-Env": "beta"}) == "header"
    assert await target_of(http, url, headers={"X-Env": "betamax"}) == "a"
    assert await target_of(http, url, method="POST") == "method"
    assert await target_of(http, url, method="DELETE") == "a"
    assert await target_of(http, url + "?version=v2") == "query"
    assert await target_of(http, url + "?VERSION=V3&x=1") == "query"  # case-insensitive
    assert await target_of(http, url + "?a=1&b=debug") == "query"  # any key
    assert await target_of(http, url + "?version=v22") == "a"
    assert await target_of(http, url + "?debugging=1") == "a"
    connector = aiohttp.TCPConnector(local_addr=(client_ip, 0))
    async with aiohttp.ClientSession(connector=connector) as other:
        assert await target_of(other, url) == "source"
        # X-Forwarded-For does not count, the connection's address does
    assert await target_of(http, url, headers={"X-Forwarded-For": client_ip}) == "a"


async def test_fixed_response(twin: TwinFactory, http: aiohttp.ClientSession) -> None:
    rules = """
          - priority: 1
            conditions: [{path_pattern: ["/teapot"]}]
            action:
              fixed_response:
                status_code: 418
                content_type: application/json
                message_body: '{"tea": "{pot}"}'
"""
    t = await twin(
        one_listener(rules, default="{fixed_response: {status_code: 404, message_body: nope}}"),
        f"  a: {QUIET}",
    )
    status, body, response = await get(http, t.url(80, "/teapot"))
    assert status == 418 and body == {"tea": "{pot}"}
    assert response.headers["Server"] == "awselb/2.0"
    status, body, response = await get(http, t.url(80, "/else"))
    assert (status, body, response.content_type) == (404, "nope", "text/plain")


async def test_weighted_forward_follows_weights(
    twin: TwinFactory, backends: Any, http: aiohttp.ClientSession
) -> None:
    default = (
        "{forward: {target_groups: [{target_group: a, weight: 3}, "
        "{target_group: b, weight: 1}, {target_group: empty, weight: 1}]}}"
    )
    t = await twin(one_listener(default=default), f"  a: {QUIET}\n  b: {QUIET}\n  empty: {QUIET}")
    await healthy(t, "a", await backends("a1"))
    await healthy(t, "b", await backends("b1"), await backends("b2"))
    seen: Counter[str] = Counter()
    for _ in range(1000):
        status, body, _ = await get(http, t.url(80, "/"))
        seen[body["id"] if isinstance(body, dict) else str(status)] += 1
    # 3 : 1 : 1 (a group picked at random by weight, as ALB does: within 5 standard
    # deviations), the group b spread over its two targets, the empty group answering 503
    assert abs(seen["a1"] - 600) <= 78, seen
    assert abs(seen["b1"] + seen["b2"] - 200) <= 63 and abs(seen["b1"] - seen["b2"]) <= 20, seen
    assert abs(seen["503"] - 200) <= 63, seen
    assert sum(seen.values()) == 1000, seen


async def test_an_empty_groups_share_is_503_while_the_503_servers_socket_is_away(
    twin: TwinFactory, backends: Any, http: aiohttp.ClientSession
) -> None:
    # A take-over renames the old run's Caddy folder before the new Caddy listens there:
    # meanwhile the old Caddy's internal 503 server is not at the path it dials.
    default = (
        "{forward: {target_groups: [{target_group: a, weight: 1}, "
        "{target_group: empty, weight: 1}]}}"
    )
    t = await twin(one_listener(default=default), f"  a: {QUIET}\n  empty: {QUIET}")
    await healthy(t, "a", await backends("a1"))
    socket = t.elb.data_plane.caddy.directory / UNAVAILABLE_SOCKET
    socket.rename(socket.with_name("set-aside.sock"))
    seen: Counter[int] = Counter()
    for _ in range(40):
        status, body, response = await get(http, t.url(80, "/"))
        seen[status] += 1
        if status != 200:
            assert "503 Service Temporarily Unavailable" in str(body)
            assert response.headers["Server"] == "awselb/2.0"
    assert set(seen) == {200, 503}, seen


async def test_redirect_http_to_https_on_the_mapped_port(
    twin: TwinFactory, http: aiohttp.ClientSession
) -> None:
    t = await twin(
        https_listener(
            """
      - port: 80
        protocol: HTTP
        default_action:
          redirect: {protocol: HTTPS, port: "443", status_code: HTTP_301}
"""
        ),
        f"  a: {QUIET}",
    )
    status, _, response = await get(
        http, t.url(80, "/some/path?q=1&r"), headers={"Host": f"{DOMAIN}:{t.ports[80]}"}
    )
    assert status == 301
    assert response.headers["Location"] == f"https://{DOMAIN}:{t.ports[443]}/some/path?q=1&r"
    _, _, response = await get(http, t.url(80, "/"))
    assert response.headers["Location"] == f"https://{t.ip}:{t.ports[443]}/"


async def test_alb_forwarding_headers(
    twin: TwinFactory, backends: Any, http: aiohttp.ClientSession, client_tls: ssl.SSLContext
) -> None:
    t = await twin(
        https_listener(
            """
      - port: 8080
        protocol: HTTP
        default_action: {forward: a}
"""
        ),
        f"  a: {QUIET}",
    )
    await healthy(t, "a", await backends("a"))
    _, body, response = await get(http, t.url(443, "/h"), ssl=client_tls, server_hostname=DOMAIN)
    assert isinstance(body, dict)
    headers = body["headers"]
    assert headers["X-Forwarded-For"] == "127.0.0.1"
    assert headers["X-Forwarded-Proto"] == "https"
    assert headers["X-Forwarded-Port"] == "443"  # the spec's port, not the twin's 8443-like one
    assert re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24}", headers["X-Amzn-Trace-Id"])
    assert "X-Forwarded-Host" not in headers and "Via" not in headers
    assert "Via" not in response.headers and "Caddy" not in response.headers.get("Server", "")

    root = "Root=1-5759e988-bd862e3fe1be46a994272793"
    incoming = {"X-Forwarded-For": "203.0.113.7", "X-Amzn-Trace-Id": root}
    _, body, _ = await get(http, t.url(8080, "/h"), headers=incoming)
    assert isinstance(body, dict)
    headers = body["headers"]
    assert headers["X-Forwarded-For"] == "203.0.113.7, 127.0.0.1"
    assert headers["X-Forwarded-Proto"] == "http"
    assert headers["X-Forwarded-Port"] == "8080"
    assert re.fullmatch(r"Self=1-[0-9a-f]{8}-[0-9a-f]{24};" + root, headers["X-Amzn-Trace-Id"])


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
async def test_https_certificate_and_tls_versions(
    twin: TwinFactory, backends: Any, http: aiohttp.ClientSession, client_tls: ssl.SSLContext
) -> None:
    t = await twin(https_listener(), f"  a: {QUIET}")
    await healthy(t, "a", await backends("a"))
    # verified against the CA, by name
    assert await target_of(http, t.url(443), ssl=client_tls, server_hostname=DOMAIN) == "a"
    # a client that sends no SNI (it connects by IP) still gets the certificate
    by_ip = ssl.create_default_context(cadata=_ca_pem(client_tls))
    by_ip.check_hostname = False  # the chain is still verified
    _, writer = await asyncio.open_connection(t.ip, t.ports[443], ssl=by_ip)
    peer = writer.get_extra_info("peercert")
    writer.close()
    assert ("DNS", DOMAIN) in peer["subjectAltName"]

    async def handshake(version: ssl.TLSVersion) -> str:
        context = ssl.create_default_context(cadata=_ca_pem(client_tls))
        context.minimum_version = context.maximum_version = version
        if version < ssl.TLSVersion.TLSv1_2:
            context.set_ciphers("ALL:@SECLEVEL=0")
        _, writer = await asyncio.open_connection(
            t.ip, t.ports[443], ssl=context, server_hostname=DOMAIN
        )
        try:
            return str(writer.get_extra_info("ssl_object").version())
        finally:
            writer.close()

    assert await handshake(ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
    assert await handshake(ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    with pytest.raises(ssl.SSLError, match=r"(?i)alert protocol version"):
        await handshake(ssl.TLSVersion.TLSv1_1)


def _ca_pem(context: ssl.SSLContext) -> str:
    return "".join(ssl.DER_cert_to_PEM_cert(der) for der in context.get_ca_certs(binary_form=True))


# -- target health and its effect on routing -------------------------------------------------


async def test_no_registered_targets_answer_503(
    twin: TwinFactory, http: aiohttp.ClientSession
) -> None:
    t = await twin(one_listener(), f"  a: {QUIET}")
    status, body, response = await get(http, t.url(80, "/"))
    assert status == 503 and "503 Service Temporarily Unavailable" in str(body)
    assert response.headers["Server"] == "awselb/2.0"


async def test_initial_target_gets_traffic_after_one_passing_check(
    twin: TwinFactory, backends: Any, http: aiohttp.ClientSession
) -> None:
    t = await twin(one_listener(), f"  a: {BUSY}")
    backend = await backends("a")
    backend.health_delay = 0.15  # the first check takes a while: the target stays initial
    t.elb.register_targets("a", [backend.target])
    assert [d.state for d in t.elb.describe_target_health("a")] == [TargetState.INITIAL]
    status, _, _ = await get(http, t.url(80, "/"))
    assert status == 503  # an initial target gets no request
    await t.elb.wait_healthy("a", timeout=2)  # one pass, although healthy_threshold is 2
    (description,) = t.elb.describe_target_health("a")
    assert (description.state, description.reason) == (TargetState.HEALTHY, None)
    assert await target_of(http, t.url(80, "/")) == "a"


@pytest.mark.slow  # unhealthy, then healthy again: a dozen checks 0.25 s apart
async def test_unhealthy_after_threshold_reports_and_stops_traffic(
    twin: TwinFactory, backends: Any, http: aiohttp.ClientSession
) -> None:
    reported: list[tuple[str, str]] = []
    t = await twin(
        one_listener(),
        f"  a: {BUSY}",
        on_unhealthy=lambda group, target: reported.append((group, target)),
    )
    good, bad = await backends("good"), await backends("bad")
    await healthy(t, "a", good, bad)
    bad.health_status = 500
    await until(lambda: reported == [("a", "bad")], what="on_unhealthy")
    assert bad.failed_checks >= 2  # unhealthy_threshold: one failed check is not enough
    states = {d.target.id: d for d in t.elb.describe_target_health("a")}
    assert states["bad"].state is TargetState.UNHEALTHY
    assert states["bad"].reason == "Target.ResponseCodeMismatch"
    assert "[500]" in str(states["bad"].description)
    await t.elb.wait_healthy("a", ["good"])
    assert {await target_of(http, t.url(80, "/")) for _ in range(10)} == {"good"}
    # back to healthy after healthy_threshold passes
    bad.health_status = 200
    await t.elb.wait_healthy("a", ["bad"], timeout=3)
    assert {await target_of(http, t.url(80, "/")) for _ in range(10)} == {"good", "bad"}


async def test_fail_open_when_every_target_is_unhealthy(
    twin: TwinFactory, backends: Any, http: aiohttp.ClientSession
) -> None:
    t = await twin(one_listener(), f"  a: {BUSY}")
    one, two = await backends("one"), await backends("two")
    await healthy(t, "a", one, two)
    one.health_status = two.health_status = 503
    await until(
        lambda: all(d.state is TargetState.UNHEALTHY for d in t.elb.describe_target_health("a")),
        what="both unhealthy",
    )
    await until(lambda: t.elb.describe().target_groups["a"].routable != [], what="push")
    assert {await target_of(http, t.url(80, "/")) for _ in range(10)} == {"one", "two"}


async def test_refused_target_answers_502(twin: TwinFactory, http: aiohttp.ClientSession) -> None:
    t = await twin(one_listener(), f"  a: {BUSY}")
    ip = loopback()
    t.elb.register_targets("a", [Target("dead", ip, free_port(ip))])  # nobody listens
    # it fails its checks (initial: 503), turns unhealthy, and then ALB fails open
    await until(
        lambda: t.elb.describe_target_health("a")[0].state is TargetState.UNHEALTHY,
        what="unhealthy",
    )
    assert t.elb.describe_target_health("a")[0].reason == "Target.FailedHealthChecks"
    await until(lambda: t.elb.describe().target_groups["a"].routable != [], what="push")

    async def refused() -> tuple[int, dict[str, Any] | str, aiohttp.ClientResponse] | None:
        answer = await get(http, t.url(80, "/"))
        return answer if answer[0] == 502 else None

    # 503 until the data plane routes to the target (within its settle time), then 502
    _, body, response = await until(refused, what="a 502 for the refused target")
    assert "502 Bad Gateway" in str(body)
    assert response.headers["Server"] == "awselb/2.0"


async def test_a_target_that_just_died_costs_no_request(
    twin: TwinFactory, backends: Any, http: aiohttp.ClientSession
) -> None:
    # AWS timings: the dead target stays routable until its checks fail (seconds from now)
    t = await twin(one_listener(), "  a: {}", time_scale=1.0)
    alive, dying = await backends("alive"), await backends("dying")
    await healthy(t, "a", alive, dying)
    await dying.stop()  # refuses connections from now on, still registered and healthy
    assert {d.target.id: d.state for d in t.elb.describe_target_health("a")}["dying"] == "healthy"
    answered = [await target_of(http, t.url(80, "/")) for _ in range(20)]
    assert set(answered) == {"alive"}  # each refused dial was retried on the next target


def burst(http: aiohttp.ClientSession, url: str, count: int) -> list[Awaitable[str]]:
    return [target_of(http, url) for _ in range(count)]


async def test_wait_routed_returns_once_no_new_request_reaches_a_deregistered_target(
    twin: TwinFactory, backends: Any, http: aiohttp.ClientSession
) -> None:
    patient = "{health_check: {path: /health, interval: 300}, deregistration_delay: 300}"
    t = await twin(one_listener(), f"  a: {patient}")
    kept, gone = await backends("kept"), await backends("gone")
    await healthy(t, "a", kept, gone)
    # both get requests (this also opens the client's connections: the burst below is fast)
    assert set(await asyncio.gather(*burst(http, t.url(80, "/"), 10))) == {"kept", "gone"}
    deregistration = asyncio.create_task(t.elb.deregister_targets("a", ["gone"]))
    await asyncio.sleep(0)  # marked draining
    before = gone.requests
    await t.elb.wait_routed(timeout=5)
    # right away, with the deregistered target still answering: it gets nothing new
    assert set(await asyncio.gather(*burst(http, t.url(80, "/"), 20))) == {"kept"}
    assert gone.requests == before
    await deregistration


@pytest.mark.slow  # waits out a 1 s idle timeout
async def test_slow_target_answers_504_after_the_idle_timeout(
    twin: TwinFactory, backends: Any, http: aiohttp.ClientSession
) -> None:
    t = await twin(one_listener(idle_timeout=1), f"  a: {QUIET}")
    await healthy(t, "a", await backends("a"))
    started = time.monotonic()
    status, body, _ = await get(http, t.url(80, "/?delay=1.5"))
    # a 504, not the target's answer: the load balancer gave up before the 1.5 s delay
    assert status == 504 and "504 Gateway Timeout" in str(body)
    assert time.monotonic() - started > 0.9  # ... and not before the 1 s idle timeout


@pytest.mark.slow  # a request in flight for 0.8 s
async def test_draining_lets_requests_in_flight_finish(
    twin: TwinFactory, backends: Any, http: aiohttp.ClientSession
) -> None:
    # QUIET, but a deregistration delay of 15 s at FAST: far longer than the request in flight
    patient = (
        "{health_check: {path: /health, interval: 300, timeout: 120}, deregistration_delay: 300}"
    )
    t = await twin(one_listener(), f"  a: {patient}")
    old, new = await backends("old"), await backends("new")
    await healthy(t, "a", old)
    slow = asyncio.create_task(get(http, t.url(80, "/?delay=0.8")))
    await until(lambda: old.requests == 1, what="the slow request")
    await healthy(t, "a", new)
    deregistration = asyncio.create_task(t.elb.deregister_targets("a", ["old"]))
    await until(
        lambda: t.elb.describe_target_health("a")[0].state is TargetState.DRAINING,
        what="draining",
    )
    await until(lambda: t.elb.describe().target_groups["a"].routable == [new.target.address])
    # no new request reaches the draining target, while the old one is still in flight
    assert {await target_of(http, t.url(80, "/")) for _ in range(10)} == {"new"}
    assert not slow.done() and not deregistration.done()
    status, body, _ = await slow
    assert status == 200 and isinstance(body, dict) and body["id"] == "old"
    # returned once drained, soon after the request: not at the end of the delay
    await until(deregistration.done, timeout=5, what="the deregistration to return")
    await deregistration
    assert [d.target.id for d in t.elb.describe_target_health("a")] == ["new"]
    assert old.requests == 1


async def _load(
    url: str, sessions: list[aiohttp.ClientSession], stop: asyncio.Event
) -> Counter[int | str]:
    """Requests from every session (several clients each) until ``stop``; status counts."""
    statuses: Counter[int | str] = Counter()

    async def client(session: aiohttp.ClientSession) -> None:
        while not stop.is_set():
            try:
                status, _, _ = await get(session, url)
                statuses[status] += 1
            except aiohttp.ClientError as err:
                statuses[type(err).__name__] += 1

    await asyncio.gather(*(client(s) for s in sessions for _ in range(4)))
    return statuses


@pytest.mark.slow  # target changes under load for a while
async def test_target_changes_under_load_drop_no_request(
    twin: TwinFactory, backends: Any, http: aiohttp.ClientSession
) -> None:
    t = await twin(one_listener(), f"  a: {QUIET}")
    steady = [await backends(f"steady{i}") for i in range(2)]
    await healthy(t, "a", *steady)
    loads_before = data_plane(t).config_loads
    stop = asyncio.Event()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as fresh:
        load = asyncio.create_task(_load(t.url(80, "/"), [http, fresh], stop))
        for backend in [await backends(f"extra{i}") for i in range(3)] * 2:
            await healthy(t, "a", backend)
            await t.elb.deregister_targets("a", [backend.name])
        stop.set()
        statuses = await load
    assert statuses[200] > 100 and set(statuses) == {200}, statuses
    # targets came and went through lookups, without a config load
    assert data_plane(t).config_loads == loads_before


@pytest.mark.slow  # target changes under load for a while
async def test_a_weighted_forward_looks_its_targets_up_too(
    twin: TwinFactory, backends: Any, http: aiohttp.ClientSession
) -> None:
    default = "{forward: {target_groups: [{target_group: a, weight: 1}, {target_group: b}]}}"
    t = await twin_with_a_and_b(twin, backends, one_listener(default=default))
    loads_before = data_plane(t).config_loads
    stop = asyncio.Event()
    load = asyncio.create_task(_load(t.url(80, "/"), [http], stop))  # keep-alive clients
    for backend in [await backends(f"extra{i}") for i in range(3)] * 2:
        await healthy(t, "b", backend)
        await t.elb.deregister_targets("b", [backend.name])
    stop.set()
    statuses = await load
    assert statuses[200] > 100 and set(statuses) == {200}, statuses
    assert data_plane(t).config_loads == loads_before  # so no keep-alive connection closed


@pytest.mark.slow  # a dozen config loads under load
async def test_config_loads_let_requests_finish(
    twin: TwinFactory, backends: Any, http: aiohttp.ClientSession
) -> None:
    # targets on another port than the group's others cannot be looked up: they are
    # listed in the config, so each change is a config load
    t = await twin(one_listener(default="{forward: b}"), f"  a: {QUIET}\n  b: {QUIET}")
    await healthy(t, "a", await backends("a"))
    b = await backends("b")
    await healthy(t, "b", b)
    slow = [asyncio.create_task(get(http, t.url(80, "/?delay=0.5"))) for _ in range(4)]
    # In flight at b before the loads begin (on a busy machine, one sent late could go to
    # a target added below, which the test then stops).
    await until(lambda: b.requests == 4, timeout=5, what="the slow requests at b")
    loads_before = data_plane(t).config_loads
    stop = asyncio.Event()
    # new connections per request: an old config's keep-alive connection may be closed
    # after its response (Go's graceful shutdown), which is why targets are looked up
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as fresh:
        load = asyncio.create_task(_load(t.url(80, "/"), [fresh], stop))
        elsewhere = [Backend(f"extra{i}", random.randint(20000, 60000)) for i in range(3)]
        try:
            for backend in [await b.start() for b in elsewhere] * 2:
                await healthy(t, "b", backend)
                await t.elb.deregister_targets("b", [backend.name])
        finally:
            stop.set()
            for backend in elsewhere:
                await backend.stop()
        statuses = await load
    assert data_plane(t).config_loads - loads_before >= 12
    assert statuses[200] > 50 and set(statuses) == {200}, statuses
    # requests in flight across the loads completed
    assert [(await task)[0] for task in slow] == [200] * 4


# -- the Caddy process ----------------------------------------------------------------------


async def test_caddy_killed_is_restarted_with_the_same_config(
    twin: TwinFactory, backends: Any, http: aiohttp.ClientSession
) -> None:
    t = await twin(one_listener(), f"  a: {QUIET}")
    await healthy(t, "a", await backends("a"))
    first = caddy_of(t.elb).pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    await until(lambda: caddy_of(t.elb).restarts == 1 and caddy_of(t.elb).pid not in (None, first))
    assert await target_of(http, t.url(80, "/")) == "a"
    assert data_plane(t).restarts == 1


async def test_a_killed_target_lookup_process_is_down_until_started_again(
    twin: TwinFactory, backends: Any, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Caddy asks this process for every forward's targets: without it forwards hang.
    t = await twin(one_listener(), f"  a: {QUIET}")
    await healthy(t, "a", await backends("a"))
    resolver = t.elb.data_plane._resolver  # type: ignore[attr-defined]
    pid = resolver.pid
    monkeypatch.setattr("sys.executable", "/bin/false")  # starting it again fails, for now
    os.kill(pid, signal.SIGKILL)
    await until(lambda: data_plane(t).state is DataPlaneState.DOWN, what="reported down")
    assert data_plane(t).problem == f"target lookups of caddy: pid {pid} was killed by signal 9"
    monkeypatch.undo()
    await until(lambda: data_plane(t).state is DataPlaneState.SERVING, 15, "serving again")
    assert resolver.pid not in (None, pid) and resolver.restarts == 1
    assert await target_of(http, t.url(80, "/")) == "a"


async def test_stop_leaves_no_caddy_process(
    twin: TwinFactory, state_dir: Path, backends: Any
) -> None:
    t = await twin(one_listener(), f"  a: {QUIET}")
    pid = caddy_of(t.elb).pid
    assert pid is not None and psutil.Process(pid).name() == "caddy"
    assert (state_dir / "pids" / "caddy.json").exists()
    assert oct((state_dir / "caddy").stat().st_mode & 0o777) == "0o700"
    assert oct(caddy_of(t.elb).admin_socket.stat().st_mode & 0o777) == "0o600"
    await t.elb.stop()
    await t.elb.stop()  # idempotent
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not any(
        str(state_dir) in " ".join(p.info["cmdline"] or [])
        for p in psutil.process_iter(["cmdline"])
    )
    assert not (state_dir / "pids" / "caddy.json").exists()


async def test_listener_port_in_use_is_named_and_nothing_leaks(
    state_dir: Path, certificate: tuple[Path, Path]
) -> None:
    spec = balancer_spec("elbtest", one_listener(), f"  a: {QUIET}")
    ip = loopback()
    with socket.socket() as taken:
        taken.bind((ip, 0))
        taken.listen()
        port = taken.getsockname()[1]
        elb = caddy_elb(
            spec,
            state_dir=state_dir,
            bind={"public": ip},
            listener_port=lambda lb, _: port,
            certificate=None,
        )
        with pytest.raises(ValidationError, match=r"listener 80\)"):
            await elb.start()  # validation probes the port before anything starts
        elb.data_plane.validate = lambda: []  # type: ignore[method-assign]
        with pytest.raises(ListenerAddressInUse, match=r"listener HTTP:80 of load balancer public"):
            await elb.start()  # and binding it still names it
    assert caddy_of(elb).pid is None
    assert not (state_dir / "pids" / "caddy.json").exists()
    await elb.stop()


async def test_started_again_after_stop(
    twin: TwinFactory, backends: Any, http: aiohttp.ClientSession
) -> None:
    t = await twin(one_listener(), f"  a: {QUIET}")
    await healthy(t, "a", await backends("a"))
    await t.elb.stop()
    await t.elb.start()
    await t.elb.wait_healthy("a")
    assert await target_of(http, t.url(80, "/")) == "a"


async def test_failed_start_reports_caddy_log(state_dir: Path) -> None:
    fake = state_dir / "fake-caddy"
    fake.write_text("#!/bin/sh\necho 'line one'\necho 'Error: loading config: boom' >&2\nexit 1\n")
    fake.chmod(0o755)
    caddy = CaddyProcess(state_dir, executable=fake)
    with pytest.raises(CaddyError, match=r"(?s)exited with status 1.*loading config: boom"):
        await caddy.start()
    assert caddy.pid is None
    await caddy.stop()  # safe after a failed start


async def test_load_error_names_caddy_reason(state_dir: Path) -> None:
    caddy = CaddyProcess(state_dir)
    await caddy.start()
    try:
        with pytest.raises(CaddyError, match="unknown module"):
            await caddy.load({"apps": {"nonsense": {}}})
        assert "v2." in await caddy.version()
    finally:
        await caddy.stop()


# -- a new spec on a running load balancer (`fargo up` on a running twin) -------------------


async def test_reconfigure_adds_rules_groups_and_listeners_in_the_same_caddy(
    twin: TwinFactory, backends: Any, http: aiohttp.ClientSession
) -> None:
    t = await twin(
        one_listener() + "      - {port: 81, protocol: HTTP, default_action: {forward: a}}\n",
        f"  a: {QUIET}",
    )
    await healthy(t, "a", await backends("a"))
    pid = data_plane(t).pid
    rule = "[{priority: 1, conditions: [{path_pattern: [/b/*]}], action: {forward: b}}]"
    t.ports[82] = free_port(t.ip)  # a new listener, on a port of its own
    new = balancer_spec(
        "elbtest",
        one_listener(rule) + "      - {port: 82, protocol: HTTP, default_action: {forward: b}}\n",
        f"  a: {QUIET}\n  b: {QUIET}",
    )
    assert t.elb.data_plane.reconfigure_problems(new) == []
    t.elb.reconfigure(new)
    await healthy(t, "b", await backends("b"))
    await t.elb.wait_routed(timeout=5)
    assert await target_of(http, t.url(80, "/b/x")) == "b"  # the new rule, the new group
    assert await target_of(http, t.url(80, "/other")) == "a"  # the group kept its target
    assert await target_of(http, t.url(82, "/")) == "b"  # the new listener
    with pytest.raises(aiohttp.ClientConnectionError):  # the removed one refuses at once
        await get(http, t.url(81, "/"), timeout=aiohttp.ClientTimeout(total=2))
    assert data_plane(t).pid == pid


async def test_reconfigure_restarts_health_checks_with_the_new_settings(
    twin: TwinFactory, backends: Any
) -> None:
    t = await twin(one_listener(), f"  a: {BUSY}")
    backend = await backends("a")
    backend.health_status = 503  # /health fails; any other path answers 200
    t.elb.register_targets("a", [backend.target])
    await until(
        lambda: t.elb.describe_target_health("a")[0].state is TargetState.UNHEALTHY,
        what="the target unhealthy at /health",
    )
    checks = BUSY.replace("path: /health", "path: /ready")
    t.elb.reconfigure(balancer_spec("elbtest", one_listener(), f"  a: {checks}"))
    await t.elb.wait_healthy("a", ["a"])


async def test_a_removed_target_group_is_deleted_once_its_targets_are_gone(
    twin: TwinFactory, backends: Any
) -> None:
    t = await twin(one_listener(), f"  a: {QUIET}\n  b: {QUIET}")
    backend = await backends("b")
    await healthy(t, "b", backend)
    t.elb.reconfigure(balancer_spec("elbtest", one_listener(), f"  a: {QUIET}"))
    with pytest.raises(ValidationError, match="still has targets: b"):
        t.elb.delete_target_group("b")
    await t.elb.deregister_targets("b", ["b"])  # its settings are kept while it drains
    t.elb.delete_target_group("b")
    with pytest.raises(Exception, match="no target group 'b'"):
        t.elb.describe_target_health("b")
