"""The twin's DNS server over real UDP and TCP sockets."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from fargo.local.cloudmap.dns_server import DnsListenError, DnsServer
from fargo.local.cloudmap.registry import CloudMap

NS = "microservice.local"
FQDN = f"private.backend.{NS}"
LONG_FQDN = f"long.{NS}"
TIMEOUT = 2.0


def registry() -> CloudMap:
    cloud_map = CloudMap()
    cloud_map.create_private_dns_namespace(NS)
    cloud_map.create_service(NS, "private.backend", ttl=60, record_types=("A", "SRV"))
    for i in range(3):
        cloud_map.register_instance(NS, "private.backend", f"task{i}", f"127.0.1.{i + 1}", 8090)
    # Eight SRV records with 63-character targets do not fit in 512 bytes.
    cloud_map.create_service(NS, "long", ttl=30, record_types=("SRV",))
    for i in range(8):
        cloud_map.register_instance(NS, "long", f"{i}".rjust(63, "x"), f"127.0.3.{i + 1}", 9000)
    return cloud_map


@pytest.fixture
async def server() -> AsyncIterator[DnsServer]:
    dns_server = DnsServer(registry())
    await dns_server.start()
    yield dns_server
    await dns_server.stop()


async def udp(server: DnsServer, name: str, rtype: str, **kw: object) -> dns.message.Message:
    host, port = server.address
    query = dns.message.make_query(name, rtype, **kw)  # type: ignore[arg-type]
    return await dns.asyncquery.udp(query, host, TIMEOUT, port)


async def tcp(server: DnsServer, name: str, rtype: str) -> dns.message.Message:
    host, port = server.address
    return await dns.asyncquery.tcp(dns.message.make_query(name, rtype), host, TIMEOUT, port)


def a_records(response: dns.message.Message) -> list[str]:
    return [
        rd.address for rrset in response.answer for rd in rrset if rrset.rdtype == dns.rdatatype.A
    ]


async def test_listens_on_loopback_on_one_port_for_udp_and_tcp(server: DnsServer) -> None:
    host, port = server.address
    assert host == "127.0.0.1"
    assert port > 0


@pytest.mark.parametrize("query", [udp, tcp])
async def test_answers_a_records_authoritatively_with_the_ttl(
    server: DnsServer, query: Callable[[DnsServer, str, str], Awaitable[dns.message.Message]]
) -> None:
    response = await query(server, FQDN, "A")
    assert response.rcode() == dns.rcode.NOERROR
    assert response.flags & dns.flags.AA
    assert not response.flags & dns.flags.RA
    assert sorted(a_records(response)) == ["127.0.1.1", "127.0.1.2", "127.0.1.3"]
    assert response.answer[0].ttl == 60


async def test_answer_order_varies_between_queries(server: DnsServer) -> None:
    orders = {tuple(a_records(await udp(server, FQDN, "A"))) for _ in range(20)}
    assert len(orders) > 1


async def test_answers_srv_and_the_instance_a_record(server: DnsServer) -> None:
    srv = await udp(server, FQDN, "SRV")
    targets = sorted(rd.target.to_text() for rd in srv.answer[0])
    assert targets == [f"task{i}.{FQDN}." for i in range(3)]
    assert {(rd.priority, rd.weight, rd.port) for rd in srv.answer[0]} == {(1, 1, 8090)}
    instance = await udp(server, f"task2.{FQDN}", "A")
    assert a_records(instance) == ["127.0.1.3"]


async def test_nxdomain_carries_the_soa(server: DnsServer) -> None:
    response = await udp(server, f"missing.{NS}", "A")
    assert response.rcode() == dns.rcode.NXDOMAIN
    assert response.flags & dns.flags.AA
    assert response.authority[0].rdtype == dns.rdatatype.SOA


async def test_nodata_and_refused(server: DnsServer) -> None:
    nodata = await udp(server, FQDN, "AAAA")
    assert (nodata.rcode(), nodata.answer) == (dns.rcode.NOERROR, [])
    refused = await udp(server, "example.com", "A")
    assert refused.rcode() == dns.rcode.REFUSED
    assert not refused.flags & dns.flags.AA


async def test_names_are_case_insensitive(server: DnsServer) -> None:
    response = await udp(server, FQDN.upper(), "A")
    assert len(a_records(response)) == 3


async def test_large_udp_answer_without_edns_is_truncated(server: DnsServer) -> None:
    truncated = await udp(server, LONG_FQDN, "SRV")
    assert truncated.flags & dns.flags.TC
    with_edns = await udp(server, LONG_FQDN, "SRV", use_edns=0, payload=1232)
    assert not with_edns.flags & dns.flags.TC
    assert len(with_edns.answer[0]) == 8
    over_tcp = await tcp(server, LONG_FQDN, "SRV")
    assert not over_tcp.flags & dns.flags.TC
    assert len(over_tcp.answer[0]) == 8


async def test_several_queries_on_one_tcp_connection(server: DnsServer) -> None:
    reader, writer = await asyncio.open_connection(*server.address)
    queries = [dns.message.make_query(FQDN, "A"), dns.message.make_query(f"task0.{FQDN}", "A")]
    writer.write(b"".join(q.to_wire(prepend_length=True) for q in queries))
    for query in queries:
        length = int.from_bytes(await reader.readexactly(2), "big")
        response = dns.message.from_wire(await reader.readexactly(length))
        assert query.is_response(response)
    writer.close()
    await writer.wait_closed()


async def test_malformed_packets_get_formerr_or_silence(server: DnsServer) -> None:
    query = dns.message.make_query(FQDN, "A")
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.connect(server.address)
        # Too short for a header: no answer. Then a header with a cut question: FORMERR.
        await loop.sock_sendall(sock, b"\x01\x02\x03")
        await loop.sock_sendall(sock, query.to_wire()[:14])
        async with asyncio.timeout(TIMEOUT):
            reply = dns.message.from_wire(await loop.sock_recv(sock, 4096))
        assert reply.id == query.id
        assert reply.rcode() == dns.rcode.FORMERR
        # The server still answers.
        await loop.sock_sendall(sock, query.to_wire())
        async with asyncio.timeout(TIMEOUT):
            answer = dns.message.from_wire(await loop.sock_recv(sock, 4096))
        assert query.is_response(answer)


async def test_stop_is_idempotent_and_safe_before_start() -> None:
    dns_server = DnsServer(registry())
    await dns_server.stop()
    await dns_server.start()
    host, port = dns_server.address
    await dns_server.stop()
    await dns_server.stop()
    with pytest.raises(RuntimeError):
        _ = dns_server.address
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        assert probe.connect_ex((host, port)) != 0


async def test_stop_closes_open_tcp_connections(server: DnsServer) -> None:
    reader, writer = await asyncio.open_connection(*server.address)
    await server.stop()
    async with asyncio.timeout(TIMEOUT):
        assert await reader.read() == b""
    writer.close()


async def test_port_in_use_names_the_address(server: DnsServer) -> None:
    host, port = server.address
    second = DnsServer(registry(), host, port)
    with pytest.raises(DnsListenError) as raised:
        await second.start()
    assert isinstance(raised.value, OSError)
    assert f"{host}:{port}" in str(raised.value)
    assert "in use" in str(raised.value)
    await second.stop()


async def test_tcp_port_in_use_releases_the_udp_socket() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        dns_server = DnsServer(registry(), "127.0.0.1", port)
        with pytest.raises(DnsListenError, match=f"127.0.0.1:{port}/TCP"):
            await dns_server.start()
    # The UDP socket bound before the failure is closed again.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp_socket:
        udp_socket.bind(("127.0.0.1", port))
