"""Cloud Map's DNS server as a part of the twin, answered by a data-plane process.

    dns = DiscoveryDnsServer(cloud_map, state_dir, "127.0.0.1", 0, bind=network.server_socket)
    await dns.start()          # sockets bound here, answered by `DnsProcess` "dns-discovery"
    dns.address                # ("127.0.0.1", 40123): UDP and TCP
    cloud_map.register_instance(...)   # the process answers with it from the next query on
    await dns.stop()

The control plane binds the UDP and TCP sockets (in VPC mode inside the router's
namespace) and hands them to the process; every change of Cloud Map's DNS state
rewrites the snapshot it answers from (``dns/discovery.json``). When the control plane
is killed or stopped, discovery names keep resolving to the last records. If the
process ends (killed, crashed) or stops answering (then it is killed), the server starts
it again on the same sockets (an adopted one's went with it: the same address is bound
again); meanwhile `problem` says why discovery does not answer.
"""

from __future__ import annotations

import errno
import logging
import socket
from pathlib import Path

from fargo.local.cloudmap.dns_server import FREE_PORT_ATTEMPTS, DnsListenError
from fargo.local.cloudmap.registry import CloudMap
from fargo.local.dataplane_dns.process import DnsProcess, answers_dns
from fargo.local.dataplane_dns.snapshot import SnapshotFile, discovery_snapshot
from fargo.local.ec2.sockets import ServerSocketFactory, bind_problem, bind_socket

logger = logging.getLogger(__name__)

PROCESS_NAME = "dns-discovery"
SNAPSHOT = Path("dns") / "discovery.json"
ADDRESS = Path("dns") / "discovery.address"  # where the process answers, for the next control plane


class DiscoveryDnsServer:
    """Serves Cloud Map's answers over UDP and TCP on ``host:port`` (0: any free port)."""

    name = "discovery DNS server (Route 53 private zones)"

    def __init__(
        self,
        cloud_map: CloudMap,
        state_dir: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        bind: ServerSocketFactory = bind_socket,
    ) -> None:
        self._cloud_map = cloud_map
        self._host = host
        self._port = port
        self._bind = bind
        self._snapshot = SnapshotFile(state_dir / SNAPSHOT, "discovery")
        self._process = DnsProcess(
            state_dir, PROCESS_NAME, "discovery", self._snapshot.path, "discovery DNS server"
        )
        self._sockets: list[socket.socket] = []
        self._address_file = state_dir / ADDRESS
        self._adopted: tuple[str, int] | None = None
        self._hold = False  # adopted: answer the previous run's records until `release`

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def problem(self) -> str | None:
        """Why discovery goes unanswered (the process ended, not yet started again)."""
        return self._process.problem

    def validate(self) -> list[str]:
        """Whether the configured port is free for both UDP and TCP (on this host; a
        network mode's own sockets are its to check)."""
        if self._bind is not bind_socket or self._adopted is not None:
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
        if self._adopted is not None:
            return self._adopted
        if not self._sockets:
            raise RuntimeError("the DNS server is not started")
        host, port = self._sockets[0].getsockname()[:2]
        return str(host), int(port)

    def adopt(self) -> bool:
        """Take over the process a killed control plane left answering on this server's
        address (it keeps answering with that run's records until `release`)."""
        try:
            host, _, port = self._address_file.read_text().strip().rpartition(":")
            address = (host, int(port))
        except (OSError, ValueError):
            return False
        wanted = self._port in (0, address[1]) and self._host == host
        if not wanted or not self._process.adopt():
            return False
        self._adopted = address
        self._hold = True
        return True

    def release(self) -> None:
        """Answer with this control plane's records from now on."""
        self._hold = False
        self._publish()

    async def start(self) -> None:
        if self._process.kept or self._sockets:
            raise RuntimeError("the DNS server is already started")
        try:
            self._cloud_map.subscribe(self._publish)
            if self._adopted is None:
                self._sockets = self._listen()
                self._snapshot.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                self._publish()
                await self._spawn()
            self._process.keep(self._respawn, self._answers)
        except BaseException:
            await self.stop()
            raise
        logger.info(
            "DNS server listening on %s:%d (UDP and TCP), answered by pid %s",
            *self.address,
            self._process.pid,
        )

    async def _spawn(self) -> None:
        await self._process.start(self._sockets)
        self._address_file.write_text("{}:{}\n".format(*self.address))

    async def _respawn(self) -> None:
        """Start the process again on its sockets; an adopted one's ended with it, so its
        address is bound again (the tasks' resolvers name it)."""
        if not self._sockets and self._adopted is not None:
            host, port = self._adopted
            udp = self._bind(socket.SOCK_DGRAM, host, port)
            try:
                tcp = self._bind(socket.SOCK_STREAM, host, port)
            except BaseException:
                udp.close()
                raise
            self._sockets, self._adopted = [udp, tcp], None
        await self._spawn()

    async def _answers(self, timeout: float) -> bool:
        """Whether the process answers a query (asked from the server's own address)."""
        try:
            host, port = self.address
            with self._bind(socket.SOCK_DGRAM, host, 0) as client:
                return await answers_dns(client, host, port, timeout)
        except (OSError, RuntimeError):
            return False

    def stop_restarting(self) -> None:
        """The twin is stopping: a process that ends now stays down."""
        self._process.stop_restarting()

    async def stop(self) -> None:
        """Stop the process and close the sockets; idempotent, safe after a failed start."""
        self._cloud_map.unsubscribe(self._publish)
        self._adopted = None
        await self._process.stop()
        self._address_file.unlink(missing_ok=True)
        sockets, self._sockets = self._sockets, []
        for sock in sockets:
            sock.close()

    def _publish(self) -> None:
        if self._hold:
            return
        self._snapshot.write(discovery_snapshot(*self._cloud_map.dns_state()))

    def _listen(self) -> list[socket.socket]:
        """A UDP and a TCP socket on one port (any port free for both, for port 0)."""
        for _ in range(FREE_PORT_ATTEMPTS if self._port == 0 else 1):
            udp = self._open(socket.SOCK_DGRAM, self._port)
            port = int(udp.getsockname()[1])
            try:
                tcp = self._open(socket.SOCK_STREAM, port)
            except DnsListenError as error:
                udp.close()
                if self._port != 0 or error.errno != errno.EADDRINUSE:
                    raise
                continue
            return [udp, tcp]
        raise DnsListenError(
            errno.EADDRINUSE,
            f"DNS server found no port on {self._host} free for both UDP and TCP "
            f"in {FREE_PORT_ATTEMPTS} tries",
        )

    def _open(self, kind: socket.SocketKind, port: int) -> socket.socket:
        try:
            return self._bind(kind, self._host, port)
        except OSError as error:
            transport = "UDP" if kind == socket.SOCK_DGRAM else "TCP"
            reason = error.strerror or str(error)
            hint = " (address already in use: choose another port)"
            raise DnsListenError(
                error.errno or 0,
                f"DNS server cannot listen on {self._host}:{port}/{transport}: {reason}"
                + (hint if error.errno == errno.EADDRINUSE else ""),
            ) from error
