"""The X-Ray daemon's UDP endpoint, served by the control plane.

Tasks get ``AWS_XRAY_DAEMON_ADDRESS`` (`address`) and send their segments there, as they
send them to the daemon sidecar in AWS; each datagram is parsed (`segments`) and kept in
the `TraceStore`. In loopback mode the endpoint is on the metadata endpoint's loopback
address; in VPC mode on the router's metadata address, port 2000, which tasks reach as
they reach the metadata endpoint. A datagram that is no segment is counted and dropped.
"""

from __future__ import annotations

import asyncio
import logging
import socket

from fargo.local.ec2.sockets import ServerSocketFactory, bind_problem, bind_socket
from fargo.local.xray.segments import BadSegment, parse_datagram
from fargo.local.xray.store import TraceStore

logger = logging.getLogger(__name__)


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, store: TraceStore) -> None:
        self.store = store

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        try:
            segment = parse_datagram(data)
        except BadSegment as err:
            self.store.rejected += 1
            if self.store.rejected == 1:  # once: a misbehaving task would flood the log
                logger.warning("X-Ray daemon: dropped a datagram from %s: %s", addr, err)
            return
        self.store.add(segment)


class XRayDaemon:
    """``XRayDaemon(store, host, port, bind=network.server_socket)``; `address` once started."""

    name = "X-Ray daemon (trace segments)"

    def __init__(
        self,
        store: TraceStore,
        host: str,
        port: int = 0,
        *,
        bind: ServerSocketFactory = bind_socket,
    ) -> None:
        self.store = store
        self._host = host
        self._port = port
        self._bind = bind
        self._transport: asyncio.DatagramTransport | None = None
        self.port = port

    @property
    def address(self) -> str:
        """``host:port`` for ``AWS_XRAY_DAEMON_ADDRESS``."""
        return f"{self._host}:{self.port}"

    def validate(self) -> list[str]:
        if self._bind is not bind_socket:
            return []  # the network mode binds it, in its own namespace
        problem = bind_problem(self._host, self._port, self.name, socket.SOCK_DGRAM)
        return [problem] if problem else []

    async def start(self) -> None:
        try:
            sock = self._bind(socket.SOCK_DGRAM, self._host, self._port)
        except OSError as err:
            raise OSError(
                err.errno, f"X-Ray daemon: cannot receive on udp {self._host}:{self._port}"
            ) from err
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Receiver(self.store), sock=sock)
        self._transport = transport

    async def stop(self) -> None:
        if self._transport is not None:
            transport, self._transport = self._transport, None
            transport.close()
