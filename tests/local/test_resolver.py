"""Discovery names resolve inside a task process, through the twin's real DNS server."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fargo.local.cloudmap.dns_server import DnsServer
from fargo.local.cloudmap.registry import CloudMap
from fargo.local.cloudmap.resolver import SITE_DIRECTORY, task_environment

NS = "microservice.local"
NAME = f"private.backend.{NS}"
ADDRESSES = {"127.0.0.1", "127.0.1.2", "127.0.1.3"}
TIMEOUT = 10.0


@pytest.fixture
async def server() -> AsyncIterator[DnsServer]:
    cloud_map = CloudMap()
    cloud_map.create_private_dns_namespace(NS)
    cloud_map.create_service(NS, "private.backend", ttl=60)
    for i, address in enumerate(sorted(ADDRESSES)):
        cloud_map.register_instance(NS, "private.backend", f"task{i}", address, 8090)
    cloud_map.put_record("internal-alb.elb.local", "127.0.2.1", 60)
    dns_server = DnsServer(cloud_map)
    await dns_server.start()
    yield dns_server
    await dns_server.stop()


def environment(server: DnsServer) -> dict[str, str]:
    zones = [NS, "elb.local"]
    return {**os.environ, **task_environment(server.address, zones, pythonpath="/elsewhere")}


async def run(code: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Run ``code`` in a fresh interpreter, as a task would; (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        textwrap.dedent(code),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(TIMEOUT):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def run_json(code: str, env: dict[str, str]) -> object:
    code_, out, err = await run(code, env)
    assert code_ == 0, err
    assert err == ""
    return json.loads(out)


def test_task_environment() -> None:
    env = task_environment(("127.0.0.1", 5353), ["Microservice.Local.", "elb.local"])
    library = Path(env.pop("FARGO_DNS_LIBRARY"))
    assert env == {
        "PYTHONPATH": str(SITE_DIRECTORY),
        "FARGO_DNS_SERVER": "127.0.0.1:5353",
        "FARGO_DNS_ZONES": "microservice.local,elb.local",
    }
    # dnspython alone, for an image without it: none of fargo's other packages
    assert [p.name for p in library.iterdir()] == ["dns"]
    assert (library / "dns" / "message.py").is_file()
    kept = task_environment(("127.0.0.1", 5353), [], pythonpath="/app")
    assert kept["PYTHONPATH"] == os.pathsep.join([str(SITE_DIRECTORY), "/app"])


async def test_a_bind_to_every_address_binds_the_tasks_own_address() -> None:
    env = {**os.environ, "PYTHONPATH": str(SITE_DIRECTORY), "FARGO_BIND_ADDRESS": "127.0.0.9"}
    bound = await run_json(
        """
        import json, socket
        names = []
        for host in ("0.0.0.0", "", "127.0.0.1"):
            with socket.socket() as server:
                server.bind((host, 0))
                names.append(server.getsockname()[0])
        print(json.dumps(names))
        """,
        env,
    )
    assert bound == ["127.0.0.9", "127.0.0.9", "127.0.0.1"]  # an explicit address stays


async def test_getaddrinfo_resolves_discovery_names_in_server_order(server: DnsServer) -> None:
    result = await run_json(
        f"""
        import json, socket
        orders = []
        for _ in range(20):
            infos = socket.getaddrinfo({NAME!r}, 8090, type=socket.SOCK_STREAM)
            orders.append([sockaddr for *_, sockaddr in infos])
        print(json.dumps(orders))
        """,
        environment(server),
    )
    assert isinstance(result, list)
    for infos in result:
        assert {host for host, _ in infos} == ADDRESSES
        assert {port for _, port in infos} == {8090}
    # libc would sort the addresses; the server's random multivalue order must survive.
    assert len({tuple(host for host, _ in infos) for infos in result}) > 1


async def test_other_socket_functions_and_plain_records(server: DnsServer) -> None:
    result = await run_json(
        f"""
        import json, socket
        print(json.dumps([
            socket.gethostbyname({NAME.upper()!r}),
            socket.gethostbyname_ex({NAME!r})[2],
            socket.getaddrinfo("internal-alb.elb.local", "http")[0][4],
            socket.getaddrinfo({NAME!r}, 1, flags=socket.AI_CANONNAME)[0][3],
            socket.getaddrinfo("localhost", 80, socket.AF_INET)[0][4][0],
        ]))
        """,
        environment(server),
    )
    assert isinstance(result, list)
    by_name, by_name_ex, plain, canonical, localhost = result
    assert by_name in ADDRESSES
    assert set(by_name_ex) == ADDRESSES
    assert plain == ["127.0.2.1", 80]
    assert canonical == NAME
    assert localhost == "127.0.0.1"


async def test_nxdomain_is_a_gaierror(server: DnsServer) -> None:
    result = await run_json(
        f"""
        import json, socket
        try:
            socket.getaddrinfo("missing.{NS}", 80)
        except socket.gaierror as error:
            print(json.dumps([error.errno, socket.EAI_NONAME]))
        """,
        environment(server),
    )
    assert isinstance(result, list)
    assert result[0] == result[1]


@pytest.mark.parametrize("runner", ["asyncio.run(main())", "import uvloop; uvloop.run(main())"])
async def test_event_loops_resolve_and_connect(server: DnsServer, runner: str) -> None:
    async def greet(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello\n")
        await writer.drain()
        writer.close()

    # Every instance listens on one port, as tasks do in awsvpc mode.
    first = await asyncio.start_server(greet, "127.0.0.1", 0)
    port = first.sockets[0].getsockname()[1]
    others = ADDRESSES - {"127.0.0.1"}
    listeners = [first, *[await asyncio.start_server(greet, h, port) for h in others]]
    try:
        result = await run_json(
            f"""
            import asyncio, json

            async def main():
                infos = await asyncio.get_running_loop().getaddrinfo({NAME!r}, {port})
                reader, writer = await asyncio.open_connection({NAME!r}, {port})
                greeting = await reader.readline()
                writer.close()
                print(json.dumps([sorted({{i[4][0] for i in infos}}), greeting.decode()]))

            {runner}
            """,
            environment(server),
        )
    finally:
        for listener in listeners:
            listener.close()
            await listener.wait_closed()
    assert result == [sorted(ADDRESSES), "hello\n"]


async def test_aiohttp_async_resolver(server: DnsServer) -> None:
    result = await run_json(
        f"""
        import asyncio, json
        from aiohttp.resolver import AsyncResolver

        async def main():
            resolver = AsyncResolver()
            hosts = await resolver.resolve({NAME!r}, 8090)
            await resolver.close()
            print(json.dumps(sorted(h["host"] for h in hosts)))

        asyncio.run(main())
        """,
        environment(server),
    )
    assert result == sorted(ADDRESSES)


async def test_without_a_server_nothing_is_imported_or_patched() -> None:
    env = {**os.environ, "PYTHONPATH": str(SITE_DIRECTORY)}
    env.pop("FARGO_DNS_SERVER", None)
    result = await run_json(
        """
        import json, sys
        heavy = sorted(m for m in ("socket", "dns", "uvloop", "aiohttp") if m in sys.modules)
        import socket
        print(json.dumps([sys.modules["sitecustomize"].__file__, heavy,
                          socket.getaddrinfo.__module__]))
        """,
        env,
    )
    assert result == [str(SITE_DIRECTORY / "sitecustomize.py"), [], "socket"]


async def test_a_broken_setting_warns_once_and_never_stops_the_interpreter() -> None:
    env = {**os.environ, "PYTHONPATH": str(SITE_DIRECTORY), "FARGO_DNS_SERVER": "no-port"}
    code, out, err = await run("print('started')", env)
    assert (code, out) == (0, "started\n")
    assert len(err.splitlines()) == 1
    assert err.startswith("fargo resolver:")
