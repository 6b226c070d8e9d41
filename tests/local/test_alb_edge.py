"""ALB's edge over real sockets: size limits, h2c, trailing dots, HTTP/1.0 Host, encodings.

Raw requests go to a real Caddy, configured from a spec; the target is a raw echo server
that answers with the request head exactly as it received it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.local.conftest import balancer_spec, caddy_elb, free_port, loopback

from fargo.local.caddy.edge import (
    LARGE_HEADERS,
    MAX_REQUEST_LINE_BYTES,
    MAX_SINGLE_HEADER_BYTES,
    MAX_WHOLE_HEADER_BYTES,
)
from fargo.local.caddy.forward import MAX_RESPONSE_HEADER_BYTES
from fargo.local.elb.load_balancing import ElasticLoadBalancing, Target
from fargo.local.elb.names import lb_dns_name
from fargo.spec.elb import Request
from fargo.spec.routing import decide

pytestmark = pytest.mark.timeout(60)

LOAD_BALANCERS = """
  public:
    scheme: internet-facing
    listeners:
      - port: 80
        protocol: HTTP
        default_action: {forward: echo}
        rules:
          - priority: 1
            conditions: [{host_header: ["example.com"]}]
            action: {fixed_response: {status_code: 200, message_body: host rule}}
          - priority: 2
            conditions: [{http_header: {name: X-Tenant, values: ["blue"]}}]
            action: {fixed_response: {status_code: 200, message_body: tenant rule}}
"""
TARGET_GROUPS = "  echo: {health_check: {path: /health, interval: 300, timeout: 120}}"


class RawEcho:
    """A target answering 200 with the request head it received, byte for byte."""

    def __init__(self) -> None:
        self.heads: list[bytes] = []
        self._server: asyncio.Server | None = None

    async def start(self, port: int) -> str:
        for _ in range(20):
            ip = loopback()
            with contextlib.suppress(OSError):
                self._server = await asyncio.start_server(self._serve, ip, port)
                return ip
        raise RuntimeError("no free address")

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        if not head.startswith(b"GET /health "):
            self.heads.append(head)
        # GET /response-header/<bytes>: a response header of about that size
        _, _, size = head.split(b" ", 2)[1].partition(b"/response-header/")
        extra = b"X-Big: %s\r\n" % (b"v" * int(size)) if size.isdigit() else b""
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n%s"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (extra, len(head), head)
        )
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()


@dataclass
class Edge:
    elb: ElasticLoadBalancing
    echo: RawEcho
    ip: str
    port: int

    async def send(self, raw: bytes) -> tuple[int, bytes, bytes]:
        """Status, response head and body of ``raw`` sent as it is; -1 if reset unanswered."""
        reader, writer = await asyncio.open_connection(self.ip, self.port)
        try:
            writer.write(raw)
            await writer.drain()
            async with asyncio.timeout(10):
                head = (await reader.readuntil(b"\r\n\r\n"))[:-4]
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
        except (ConnectionResetError, asyncio.IncompleteReadError):
            return -1, b"", b""
        finally:
            writer.close()
        return int(head.split(b" ", 2)[1]), head, body

    def received(self) -> dict[str, list[str]]:
        """The headers of the one request the target received (names lowercase)."""
        (head,) = self.echo.heads
        self.echo.heads.clear()
        headers: dict[str, list[str]] = {}
        for line in head.decode("latin-1").split("\r\n")[1:]:
            if line:
                name, _, value = line.partition(":")
                headers.setdefault(name.lower(), []).append(value.strip())
        return headers


@pytest.fixture
async def edge(state_dir: Path) -> AsyncIterator[Edge]:
    spec = balancer_spec("edge", LOAD_BALANCERS, TARGET_GROUPS)
    ip = loopback()
    port = free_port(ip)
    elb = caddy_elb(
        spec,
        state_dir=state_dir,
        bind={"public": ip},
        listener_port=lambda lb, _: port,
        certificate=None,
    )
    echo = RawEcho()
    try:
        await elb.start()
        target_ip = await echo.start(random.randint(20000, 60000))
        assert echo._server is not None
        target_port = echo._server.sockets[0].getsockname()[1]
        elb.register_targets("echo", [Target("echo", target_ip, target_port)])
        await elb.wait_healthy("echo")
        yield Edge(elb, echo, ip, port)
    finally:
        await elb.stop()
        await echo.stop()


def get(path: str = "/", *headers: str, host: str = "app.test", version: str = "1.1") -> bytes:
    lines = [f"GET {path} HTTP/{version}", f"Host: {host}", *headers, "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def path_of_line(length: int) -> str:
    """A path that makes ``GET <path> HTTP/1.1`` exactly ``length`` bytes long."""
    return "/" + "a" * (length - len("GET  HTTP/1.1") - 1)


# -- size limits ------------------------------------------------------------------------------


async def test_a_request_line_over_16k_answers_alb_400_and_reaches_no_target(
    edge: Edge,
) -> None:
    status, head, body = await edge.send(get(path_of_line(MAX_REQUEST_LINE_BYTES + 1)))
    assert status == 400
    assert b"Server: awselb/2.0" in head and b"400 Bad Request" in body
    assert edge.echo.heads == []
    status, _, _ = await edge.send(get(path_of_line(MAX_REQUEST_LINE_BYTES)))
    assert status == 200


@pytest.mark.parametrize("name", ["Cookie", "Authorization", "X-Tenant"])
async def test_a_single_header_over_16k_answers_400(edge: Edge, name: str) -> None:
    value = "v" * (MAX_SINGLE_HEADER_BYTES - len(name) - 2)  # "Name: value" is 16 K
    status, _, _ = await edge.send(get("/", f"{name}: {value}"))
    assert status == 200
    assert len(edge.received()[name.lower()][0]) == len(value)
    status, _, body = await edge.send(get("/", f"{name}: {value}x"))
    assert status == 400 and b"400 Bad Request" in body
    assert edge.echo.heads == []


async def test_headers_under_16k_each_pass_up_to_64k_together(edge: Edge) -> None:
    big = [f"{name}: {'v' * 15000}" for name in LARGE_HEADERS[:3]]  # 45 K in all
    status, _, _ = await edge.send(get("/", *big))
    assert status == 200
    assert len(edge.received()["cookie"][0]) == 15000


async def test_a_whole_header_over_64k_is_refused_before_any_target(edge: Edge) -> None:
    pieces = [f"X-Piece-{n}: {'v' * 10000}" for n in range(MAX_WHOLE_HEADER_BYTES // 10000 + 1)]
    status, _, _ = await edge.send(get("/", *pieces))
    # Go's server answers 431 itself (docs/twin.md), or resets while the client writes.
    assert status in (431, -1)
    assert edge.echo.heads == []


async def test_a_response_header_over_32k_answers_502(edge: Edge) -> None:
    status, _, _ = await edge.send(get(f"/response-header/{MAX_RESPONSE_HEADER_BYTES - 1024}"))
    assert status == 200
    status, head, body = await edge.send(get(f"/response-header/{MAX_RESPONSE_HEADER_BYTES}"))
    assert status == 502 and b"502 Bad Gateway" in body and b"X-Big" not in head


# -- rewrites ---------------------------------------------------------------------------------


async def test_an_obs_fold_reaches_the_target_unfolded(edge: Edge) -> None:
    # Caddy cannot answer 400 here (docs/twin.md); it never passes the fold on.
    status, _, _ = await edge.send(get("/", "X-Folded: one", "\ttwo"))
    assert status == 200
    assert edge.received()["x-folded"] == ["one two"]


async def test_upgrade_h2c_is_not_forwarded_but_websocket_is(edge: Edge) -> None:
    h2c = get(
        "/",
        "Upgrade: h2c",
        "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA",
        "Connection: Upgrade, HTTP2-Settings",
    )
    status, _, _ = await edge.send(h2c.replace(b"Connection: close\r\n", b""))
    assert status == 200
    received = edge.received()
    assert "upgrade" not in received and "http2-settings" not in received
    status, _, _ = await edge.send(
        get("/", "Upgrade: websocket", "Connection: Upgrade").replace(b"Connection: close\r\n", b"")
    )
    assert status == 200
    assert edge.received()["upgrade"] == ["websocket"]


@pytest.mark.parametrize("host", ["example.com", "example.com.", "EXAMPLE.com.:80"])
async def test_a_trailing_dot_in_host_does_not_bypass_a_host_rule(edge: Edge, host: str) -> None:
    status, _, body = await edge.send(get("/", host=host))
    assert (status, body) == (200, b"host rule")
    listener = edge.elb.spec.load_balancers["public"].listeners[0]
    decision = decide(listener, Request(method="GET", path="/", host=host))
    assert decision.action.fixed_response is not None  # the evaluator agrees


async def test_another_host_with_a_trailing_dot_goes_to_the_default(edge: Edge) -> None:
    status, _, _ = await edge.send(get("/", host="other.example.com."))
    assert status == 200
    assert edge.received()["host"] == ["other.example.com."]  # passed on as sent


async def test_http_1_0_without_host_gets_the_load_balancers_dns_name(edge: Edge) -> None:
    status, _, _ = await edge.send(b"GET /old HTTP/1.0\r\n\r\n")
    assert status == 200
    assert edge.received()["host"] == [lb_dns_name(edge.elb.spec, "public")]
    status, _, _ = await edge.send(get("/old", host="mine.test", version="1.0"))
    assert status == 200
    assert edge.received()["host"] == ["mine.test"]


async def test_no_accept_encoding_is_added_towards_targets(edge: Edge) -> None:
    status, _, _ = await edge.send(get("/"))
    assert status == 200
    assert "accept-encoding" not in edge.received()
    status, _, _ = await edge.send(get("/", "Accept-Encoding: br"))
    assert status == 200
    assert edge.received()["accept-encoding"] == ["br"]
