"""The Route 53 resolver of the twin: a real DNS server answering from a :class:`CloudMap`.

It listens on UDP and TCP on one loopback port and answers authoritatively for
the registry's zones (and REFUSED for everything else; it is no recursive
resolver). dnspython does the wire format.

    server = DnsServer(cloud_map, "127.0.0.1", 0)
    await server.start()
    host, port = server.address
    ...
    await server.stop()
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable, Iterable
from typing import Protocol, cast

import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from fargo.local.cloudmap.route53 import Answer, ResourceRecord
from fargo.local.ec2.sockets import ServerSocketFactory, bind_problem, bind_socket

logger = logging.getLogger(__name__)

UDP_PAYLOAD_WITHOUT_EDNS = 512
TCP_MAX_MESSAGE = 65535
# A TCP client that sends nothing for this long is disconnected (RFC 7766 suggests seconds).
TCP_IDLE_TIMEOUT_SECONDS = 10.0
# Tries to find a port free for both UDP and TCP when asked for port 0.
FREE_PORT_ATTEMPTS = 20
HEADER_SIZE = 12

Responder = Callable[[bytes, bool], bytes | None]


class Zones(Protocol):
    """What the server answers from: a `fargo.local.cloudmap.registry.CloudMap`, or a
    snapshot of one (`fargo.local.dataplane_dns.snapshot.SnapshotZones`)."""

    def answer(self, qname: str, qtype: str) -> Answer: ...


class DnsListenError(OSError):
    """The DNS server cannot listen on its address (in use, or not permitted)."""


class DnsServer:
    """Serves ``cloud_map.answer`` over UDP and TCP on ``host:port`` (0: any free port)."""

    def __init__(
        self,
        cloud_map: Zones,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        bind: ServerSocketFactory = bind_socket,
    ) -> None:
        self._cloud_map = cloud_map
        self._host = host
        self._port = port
        self._bind = bind
        self._udp: tuple[asyncio.DatagramTransport, _UdpProtocol] | None = None
        self._tcp: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._address: tuple[str, int] | None = None

    name = "discovery DNS server (Route 53 private zones)"

    def validate(self) -> list[str]:
        """Whether the configured port is free for both UDP and TCP (on this host; a
        network mode's own sockets are its to check)."""
        if self._bind is not bind_socket:
            return []
        what = "the discovery DNS server"
        problems = [
            bind_problem(self._host, self._port, what, kind)
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM)
        ]
        return [p for p in problems if p is not None]

    @property
    def address(self) -> tuple[str, int]:
        """The ``(host, port)`` both transports listen on; only after :meth:`start`."""
        if self._address is None:
            raise RuntimeError("the DNS server is not started")
        return self._address

    async def start(self) -> None:
        """Listen on UDP and TCP; :class:`DnsListenError` names the address when it cannot."""
        if self._address is not None:
            raise RuntimeError("the DNS server is already started")
        try:
            for _ in range(FREE_PORT_ATTEMPTS if self._port == 0 else 1):
                port = await self._listen_udp(self._port)
                try:
                    await self._listen_tcp(port)
                except DnsListenError as error:
                    await self.stop()
                    if self._port != 0 or error.errno != errno.EADDRINUSE:
                        raise
                    continue
                self._address = (self._host, port)
                logger.info("DNS server listening on %s:%d (UDP and TCP)", self._host, port)
                return
            raise DnsListenError(
                errno.EADDRINUSE,
                f"DNS server found no port on {self._host} free for both UDP and TCP "
                f"in {FREE_PORT_ATTEMPTS} tries",
            )
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Close both sockets and open TCP connections; idempotent, safe after a failed start."""
        self._address = None
        udp, self._udp = self._udp, None
        tcp, self._tcp = self._tcp, None
        if udp is not None:
            udp[0].close()
        if tcp is not None:
            tcp.close()
        connections, self._connections = self._connections, set()
        for task in connections:
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)
        if tcp is not None:
            await tcp.wait_closed()
        if udp is not None:
            await udp[1].closed  # the socket is released only once the loop has closed it

    async def _listen_udp(self, port: int) -> int:
        loop = asyncio.get_running_loop()
        try:
            sock = self._bind(socket.SOCK_DGRAM, self._host, port)
            transport, protocol = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self._respond), sock=sock
            )
        except OSError as error:
            raise _listen_error(error, self._host, port, "UDP") from error
        self._udp = (transport, protocol)
        port_chosen: int = transport.get_extra_info("sockname")[1]
        return port_chosen

    async def _listen_tcp(self, port: int) -> None:
        try:
            sock = self._bind(socket.SOCK_STREAM, self._host, port)
            self._tcp = await asyncio.start_server(self._serve_tcp, sock=sock)
        except OSError as error:
            raise _listen_error(error, self._host, port, "TCP") from error

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            # RFC 7766: a client may send several length-prefixed queries on one connection.
            while True:
                async with asyncio.timeout(TCP_IDLE_TIMEOUT_SECONDS):
                    length = int.from_bytes(await reader.readexactly(2), "big")
                    wire = await reader.readexactly(length)
                reply = self._respond(wire, False)
                if reply is None:
                    return
                writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            return
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()

    def _respond(self, wire: bytes, udp: bool) -> bytes | None:
        """The reply to one message (length-prefixed for TCP), or None to stay silent."""
        try:
            query = dns.message.from_wire(wire)
        except dns.message.ShortHeader:
            return None
        except dns.exception.DNSException:
            response = _format_error(wire)
        else:
            if query.flags & dns.flags.QR:
                return None  # a response, not a question: never answer it
            response = dns.message.make_response(query)
            try:
                self._fill(query, response)
            except Exception:
                logger.exception("DNS server failed to answer %s", query.question)
                response.answer.clear()
                response.authority.clear()
                response.set_rcode(dns.rcode.SERVFAIL)
        if response is None:
            return None
        if not udp:
            return response.to_wire(max_size=TCP_MAX_MESSAGE, prepend_length=True)
        limit = max(response.request_payload, UDP_PAYLOAD_WITHOUT_EDNS)
        return response.to_wire(max_size=limit, prefer_truncation=True)

    def _fill(self, query: dns.message.Message, response: dns.message.Message) -> None:
        if query.opcode() != dns.opcode.QUERY:
            response.set_rcode(dns.rcode.NOTIMP)
            return
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return
        question = query.question[0]
        if question.rdclass != dns.rdataclass.IN:
            response.set_rcode(dns.rcode.REFUSED)
            return
        answer: Answer = self._cloud_map.answer(
            question.name.to_text(), dns.rdatatype.to_text(question.rdtype)
        )
        response.set_rcode(dns.rcode.from_text(answer.rcode))
        if answer.authoritative:
            response.flags |= dns.flags.AA
        response.answer.extend(_rrsets(answer.answer))
        response.authority.extend(_rrsets(answer.authority))


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, respond: Responder) -> None:
        self._respond = respond
        self._transport: asyncio.DatagramTransport | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        reply = self._respond(data, True)
        if reply is not None and self._transport is not None:
            self._transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors for earlier replies (a client gone away); nothing to do.
        logger.debug("DNS server UDP error: %s", exc)


def _rrsets(records: Iterable[ResourceRecord]) -> list[dns.rrset.RRset]:
    """Group records into RRsets, keeping their order (the order is the balancing)."""
    grouped: dict[tuple[str, str], list[ResourceRecord]] = {}
    for record in records:
        grouped.setdefault((record.name.lower(), record.type), []).append(record)
    return [
        dns.rrset.from_text_list(
            group[0].name,
            min(r.ttl for r in group),
            dns.rdataclass.IN,
            rtype,
            [r.value for r in group],
        )
        for (_, rtype), group in grouped.items()
    ]


def _format_error(wire: bytes) -> dns.message.Message | None:
    """FORMERR for a message whose header parses but whose body does not."""
    if len(wire) < HEADER_SIZE or wire[2] & 0x80:  # too short, or the QR bit: a response
        return None
    response = dns.message.Message(id=int.from_bytes(wire[:2], "big"))
    response.flags = dns.flags.QR
    response.set_rcode(dns.rcode.FORMERR)
    return response


def _listen_error(error: OSError, host: str, port: int, transport: str) -> DnsListenError:
    reason = error.strerror or str(error)
    in_use = error.errno == errno.EADDRINUSE
    hint = " (address already in use: choose another port)" if in_use else ""
    return DnsListenError(
        error.errno or 0, f"DNS server cannot listen on {host}:{port}/{transport}: {reason}{hint}"
    )
