"""The pooled client: balancing over resolved addresses, and failures as 502/504."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from service_kit.downstream import Callee, Downstream, DownstreamError
from testkit import Blackhole, FakeCallee, PrivateTasks, free_port

NAME = "private.backend.microservice.local"


class FakeDns:
    """Stands in for ``loop.getaddrinfo``: NAME resolves to ``addresses``."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = list(addresses)
        self.lookups = 0

    async def __call__(self, host: str, port: int, **kwargs: Any) -> list[Any]:
        self.lookups += 1
        assert kwargs.get("type") == socket.SOCK_STREAM
        if host != NAME or not self.addresses:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))
            for address in self.addresses
        ]


@pytest.fixture
async def downstream() -> AsyncIterator[Downstream]:
    client = Downstream(connect_timeout_s=1, read_timeout_s=0.5)
    await client.start()
    yield client
    await client.stop()
    await client.stop()  # idempotent


def use_dns(monkeypatch: pytest.MonkeyPatch, dns: FakeDns) -> None:
    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", dns)


async def test_requests_spread_over_every_address_of_the_name(
    downstream: Downstream, private_tasks: PrivateTasks, monkeypatch: pytest.MonkeyPatch
) -> None:
    dns = FakeDns(*private_tasks.addresses)
    use_dns(monkeypatch, dns)
    callee = Callee.parse(f"http://{NAME}:{private_tasks.port}", setting="TEST")

    answers = Counter(
        [(await downstream.get(callee, "/endpoint")).body.decode() for _ in range(40)]
    )

    assert set(answers) == {f"TaskId: {task_id}" for task_id in private_tasks.task_ids}
    assert dns.lookups == 1  # cached for ADDRESS_TTL_S


async def test_a_refused_address_is_retried_elsewhere_and_the_name_looked_up_again(
    downstream: Downstream, private_tasks: PrivateTasks, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = "127.0.0.4"  # a stopped task: nobody listens there
    dns = FakeDns(dead, private_tasks.addresses[0])
    use_dns(monkeypatch, dns)
    callee = Callee.parse(f"http://{NAME}:{private_tasks.port}", setting="TEST")

    answers = [(await downstream.get(callee, "/endpoint")).status for _ in range(20)]

    assert answers == [200] * 20
    assert dns.lookups > 1  # each refusal dropped the cached addresses


async def test_a_connect_timeout_is_retried_once_on_another_address(
    downstream: Downstream, private_tasks: PrivateTasks, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task whose host stopped answering (SYNs dropped) costs one connect timeout, then
    the request goes to another of the name's addresses: no 504 while one is alive."""
    with Blackhole("127.0.0.5", private_tasks.port) as hole:
        dns = FakeDns(hole.address, private_tasks.addresses[0])
        use_dns(monkeypatch, dns)
        callee = Callee.parse(f"http://{NAME}:{private_tasks.port}", setting="TEST")
        # The first pick is random: force the dead address first, as bad luck would.
        monkeypatch.setattr("service_kit.downstream.random.choice", lambda options: options[0])

        answer = await downstream.get(callee, "/endpoint")

    assert (answer.status, answer.body) == (200, b"TaskId: task-a")
    assert dns.lookups == 2  # the timeout dropped the cached addresses


async def test_a_connect_timeout_with_no_other_address_is_504(
    downstream: Downstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port("127.0.0.5")
    with Blackhole("127.0.0.5", port) as hole:
        use_dns(monkeypatch, FakeDns(hole.address))
        callee = Callee.parse(f"http://{NAME}:{port}", setting="TEST")
        started = asyncio.get_running_loop().time()
        with pytest.raises(DownstreamError) as caught:
            await downstream.get(callee, "/endpoint")
        elapsed = asyncio.get_running_loop().time() - started

    assert caught.value.status == 504
    assert caught.value.reason == "connect timed out after 1s"
    assert caught.value.address == f"127.0.0.5:{port}"
    assert elapsed < 2 * downstream.connect_timeout_s  # the same dead address: not again


async def test_unresolvable_name_is_502(
    downstream: Downstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_dns(monkeypatch, FakeDns())
    callee = Callee.parse(f"http://{NAME}:8090", setting="TEST")

    with pytest.raises(DownstreamError) as caught:
        await downstream.get(callee, "/endpoint")

    assert caught.value.status == 502
    assert f"cannot resolve {NAME}" in caught.value.reason
    assert caught.value.callee == f"http://{NAME}:8090/endpoint"


async def test_refused_connection_is_502(downstream: Downstream) -> None:
    callee = Callee.parse(f"http://127.0.0.1:{free_port()}", setting="TEST")

    with pytest.raises(DownstreamError) as caught:
        await downstream.get(callee, "/endpoint")

    assert caught.value.status == 502
    assert caught.value.response().status == 502


async def test_read_timeout_is_504(downstream: Downstream) -> None:
    with FakeCallee(hold=True) as callee, pytest.raises(DownstreamError) as caught:
        await downstream.get(Callee.parse(callee.url, setting="TEST"), "/endpoint")

    assert caught.value.status == 504
    assert caught.value.reason == "no response within 0.5s"


async def test_a_502_from_a_load_balancer_is_retried_twice_at_most(
    downstream: Downstream,
) -> None:
    with FakeCallee(statuses=[502, 502]) as callee:
        answer = await downstream.get(Callee.parse(callee.url, setting="TEST"), "/endpoint")
    assert (answer.status, answer.body) == (200, b"TaskId: fake")
    assert len(callee.requests) == 3

    with FakeCallee(statuses=[502, 502, 502, 502]) as callee:
        answer = await downstream.get(Callee.parse(callee.url, setting="TEST"), "/endpoint")
    assert answer.status == 502  # passed through after two retries, never a fourth try
    assert len(callee.requests) == 3


async def test_a_connection_reset_mid_request_is_retried_once(downstream: Downstream) -> None:
    """A killed task's connections are reset (RST): the request is sent again, once, as
    GET is idempotent."""
    # A reset may surface while connecting or after sending; aiohttp itself sometimes
    # sends once more: one reset never fails the call.
    with FakeCallee(resets=1) as callee:
        answer = await downstream.get(Callee.parse(callee.url, setting="TEST"), "/endpoint")
    assert (answer.status, answer.body) == (200, b"TaskId: fake")
    assert len(callee.requests) == 1  # the reset ones never reached the handler

    with FakeCallee(resets=100) as callee, pytest.raises(DownstreamError) as caught:
        await downstream.get(Callee.parse(callee.url, setting="TEST"), "/endpoint")
    assert caught.value.status == 502
    assert 100 - callee.server.resets <= 4  # two attempts, never a third


async def test_host_header_is_the_name_and_trace_id_is_forwarded(
    downstream: Downstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_dns(monkeypatch, FakeDns("127.0.0.1"))
    with FakeCallee() as fake:
        callee = Callee.parse(f"http://{NAME}:{fake.port}/base/", setting="TEST")
        answer = await downstream.get(callee, "/endpoint", trace_id="Root=1-x")

    assert (answer.status, answer.body) == (200, b"TaskId: fake")
    path, headers = fake.requests[0]
    assert path == "/base/endpoint"
    assert headers["host"] == f"{NAME}:{fake.port}"
    assert headers["x-amzn-trace-id"] == "Root=1-x"
    assert "accept-encoding" not in headers  # bodies pass through undecoded


async def test_get_before_start_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="before start"):
        await Downstream().get(Callee.parse("http://127.0.0.1:1", setting="TEST"), "/")


@pytest.mark.parametrize(
    ("preload", "threads_after_start"),
    [(True, ["['MainThread',", "'http_pool", "import']"]), (False, ["['MainThread']"])],
)
def test_the_pool_loads_after_start_without_holding_the_process_up(
    preload: bool, threads_after_start: list[str]
) -> None:
    """A service listens before aiohttp (half its start-up) is imported: `start` imports
    it in a thread (or, with ``preload`` off, not at all), and the first call waits for
    it (or imports it)."""
    script = f"""
import asyncio, sys, threading
from service_kit.downstream import Callee, Downstream, DownstreamError
assert "aiohttp" not in sys.modules, "imported with the service"
async def main():
    client = Downstream(connect_timeout_s=1, read_timeout_s=1, preload={preload})
    await client.start()
    loading = [t.name for t in threading.enumerate()]
    try:
        await client.get(Callee.parse("http://127.0.0.1:1", setting="T"), "/")
    except DownstreamError as err:
        print(loading, "aiohttp" in sys.modules, err.status)
    await client.stop()
asyncio.run(main())
"""
    services = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(services)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [*threads_after_start, "True", "502"]


async def test_a_hung_task_is_avoided_after_one_read_timeout(
    private_tasks: PrivateTasks, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task that accepts and never answers (SIGSTOPped) costs one read timeout; the next
    calls go to the name's other addresses at once, until its ejection ends."""
    hung = "127.0.0.6"
    accepted: list[asyncio.StreamWriter] = []

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # keeps the connection open, reads nothing, answers nothing

    server = await asyncio.start_server(never_answer, hung, private_tasks.port)
    client = Downstream(connect_timeout_s=1, read_timeout_s=0.5, ejection_s=2.0)
    await client.start()
    try:
        dns = FakeDns(f"{hung}", *private_tasks.addresses)
        use_dns(monkeypatch, dns)
        callee = Callee.parse(f"http://{NAME}:{private_tasks.port}", setting="TEST")
        # The hung address first whenever it may be chosen, as bad luck would have it.
        monkeypatch.setattr("service_kit.downstream.random.choice", lambda options: options[0])

        with pytest.raises(DownstreamError) as caught:
            await client.get(callee, "/endpoint")
        assert (caught.value.status, caught.value.address) == (
            504,
            f"{hung}:{private_tasks.port}",
        )

        loop = asyncio.get_running_loop()
        started = loop.time()
        answers = [(await client.get(callee, "/endpoint")).status for _ in range(20)]
        recovered = loop.time() - started
        assert answers == [200] * 20
        assert recovered < 1.0  # not one more read timeout
        assert dns.lookups == 2  # the timeout dropped the cached addresses
        assert len(accepted) == 1

        await asyncio.sleep(2.0)  # the ejection ends: the address is tried again
        with pytest.raises(DownstreamError, match="no response within"):
            await client.get(callee, "/endpoint")
        assert len(accepted) == 2
    finally:
        await client.stop()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_when_every_address_is_ejected_all_are_used(
    downstream: Downstream, private_tasks: PrivateTasks, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_dns(monkeypatch, FakeDns(*private_tasks.addresses))
    callee = Callee.parse(f"http://{NAME}:{private_tasks.port}", setting="TEST")
    for address in private_tasks.addresses:
        downstream._eject(f"{address}:{private_tasks.port}")
    answers = {(await downstream.get(callee, "/endpoint")).body for _ in range(20)}
    assert answers == {b"TaskId: task-a", b"TaskId: task-b"}
