"""Caddy's target lookups, answered by a data-plane process (see `fargo.local.caddy.target_dns`).

    lookups = TargetLookupServer(state_dir, "caddy", bind=open_local)
    await lookups.start()      # a UDP socket on 127.0.0.1, answered by "caddy-targets"
    lookups.publish(target_records({"frontend": ["127.0.1.7:80"]}))
    lookups.address            # "udp/127.0.0.1:40123", for Caddy's dynamic upstreams
    await lookups.stop()

If the process ends (killed, crashed) or stops answering (then it is killed), the server
starts it again on the same socket, so Caddy's lookups go on at the same address;
meanwhile `problem` says why it is down.

`publish` replaces the snapshot file (``caddy/targets.json``) before it returns, and the
process reads it at the next query: a target leaves traffic as fast as it did when the
control plane answered itself. When the control plane is killed or stopped, Caddy keeps
getting the last targets, instead of failing its lookups (and answering 503).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path

from fargo.local.dataplane_dns.process import DnsProcess, answers_dns
from fargo.local.dataplane_dns.snapshot import SnapshotFile, targets_snapshot
from fargo.local.ec2.sockets import ServerSocketFactory, bind_socket
from fargo.local.elb.errors import ElbError
from fargo.local.state.files import write_atomically

SNAPSHOT_FILE = "targets.json"
ADDRESS_FILE = "targets.address"  # where the process answers, for the next control plane
# Which socket of each listener's pair gets new connections (`fargo.local.caddy.handover`).
ACTIVE_FILE = "listeners-active.json"
HANDOVER_SOCKET = "handover.sock"  # where it hands the listening sockets over
PROCESS_SUFFIX = "-targets"  # its process record: "<Caddy's name>-targets"
MAX_LISTENERS = 64


class TargetLookupServer:
    """The DNS server Caddy asks for each target group's targets, in a process of its own."""

    def __init__(
        self, state_dir: Path, caddy_name: str, *, bind: ServerSocketFactory = bind_socket
    ) -> None:
        self._bind = bind
        self._snapshot = SnapshotFile(state_dir / caddy_name / SNAPSHOT_FILE, "targets")
        self._process = DnsProcess(
            state_dir,
            f"{caddy_name}{PROCESS_SUFFIX}",
            "targets",
            self._snapshot.path,
            f"target lookups of {caddy_name}",
        )
        self._records: dict[str, list[str]] = {}
        self._socket: socket.socket | None = None
        self._folder = state_dir / caddy_name
        self._adopted_address: str | None = None
        self._hold = False  # adopted: answer the previous run's targets until `release`
        self._listeners: dict[str, socket.socket] = {}  # kept for the next control plane

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def problem(self) -> str | None:
        """Why Caddy's lookups go unanswered (the process ended, not yet started again)."""
        return self._process.problem

    @property
    def restarts(self) -> int:
        return self._process.restarts

    @property
    def address(self) -> str:
        """Where Caddy sends its lookups, as a Caddy network address."""
        if self._adopted_address is not None:
            return self._adopted_address
        if self._socket is None:
            raise ElbError("the target resolver is not started")
        host, port = self._socket.getsockname()[:2]
        return f"udp/{host}:{port}"

    def publish(self, records: Mapping[str, Sequence[str]]) -> None:
        """Answer with ``records`` (lookup name → IPv4s) from the next query on."""
        self._records = {name: list(ips) for name, ips in records.items()}
        if (self._socket is not None or self._adopted_address is not None) and not self._hold:
            self._snapshot.write(targets_snapshot(self._records))

    def adopt(self) -> bool:
        """Take over the process a killed control plane left answering (it keeps answering
        with that run's targets until `release`); False if there is none to adopt."""
        try:
            address = (self._folder / ADDRESS_FILE).read_text().strip()
        except OSError:
            return False
        if not address.startswith("udp/") or not self._process.adopt():
            return False
        self._adopted_address = address
        self._hold = True
        return True

    def disown(self) -> None:
        """Undo `adopt`: the process is left alone (the caller sweeps it)."""
        self._adopted_address = None
        self._hold = False
        self._process.disown()

    def release(self) -> None:
        """Answer with this control plane's targets from now on."""
        self._hold = False
        self._snapshot.write(targets_snapshot(self._records))

    def record_active(self, active: Mapping[str, int]) -> None:
        """Write which socket of each listener's pair gets new connections (the one the
        current config listens on, unless it stands by), for a control plane that takes
        this run's listeners over."""
        write_atomically(self._folder / ACTIVE_FILE, json.dumps(dict(active)).encode())

    async def start(self, listeners: Mapping[str, socket.socket] | None = None) -> None:
        """Start the process; it also keeps ``listeners`` (Caddy server name → listening
        socket) for the next control plane, should this one be killed."""
        if self._process.kept:
            return
        self._listeners = dict(listeners or {})
        try:
            if self._adopted_address is None:
                self._snapshot.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                self._socket = self._bind(socket.SOCK_DGRAM, "127.0.0.1", 0)
                self._snapshot.write(targets_snapshot(self._records))
                await self._spawn()
            self._process.keep(self._respawn, self._answers)
        except BaseException:
            await self.stop()
            raise

    def keep_listeners(self, listeners: Mapping[str, socket.socket]) -> None:
        """The listening sockets a process started from now on keeps (the spec changed)."""
        self._listeners = dict(listeners)

    async def _spawn(self) -> None:
        assert self._socket is not None
        # a listener the spec dropped is closed (fileno -1): nothing to keep of it
        kept = {name: sock for name, sock in self._listeners.items() if sock.fileno() >= 0}
        await self._process.start(
            [self._socket], keep=kept, handover=self._folder / HANDOVER_SOCKET
        )
        (self._folder / ADDRESS_FILE).write_text(self.address + "\n")

    async def _respawn(self) -> None:
        """Start the process again on its socket; an adopted one's socket ended with it, so
        the same address is bound again (Caddy's config names it)."""
        if self._socket is None and self._adopted_address is not None:
            host, _, port = self._adopted_address.removeprefix("udp/").rpartition(":")
            self._socket = self._bind(socket.SOCK_DGRAM, host, int(port))
            self._adopted_address = None
        await self._spawn()

    async def _answers(self, timeout: float) -> bool:
        """Whether the process answers a query (asked from where Caddy asks)."""
        try:
            host, _, port = self.address.removeprefix("udp/").rpartition(":")
            with self._bind(socket.SOCK_DGRAM, host, 0) as client:
                return await answers_dns(client, host, int(port), timeout)
        except (OSError, ValueError, ElbError):
            return False

    def stop_restarting(self) -> None:
        """The twin is stopping: a process that ends now stays down."""
        self._process.stop_restarting()

    async def stop(self) -> None:
        """Stop answering; idempotent."""
        self._adopted_address = None
        await self._process.stop()
        (self._folder / ADDRESS_FILE).unlink(missing_ok=True)
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.close()


def handed_over_listeners(folder: Path) -> dict[str, socket.socket]:
    """The listening sockets the lookup process of the Caddy whose folder is ``folder``
    keeps, by Caddy server name (``<name>#<index>``, see `fargo.local.caddy.handover.flat`)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(5)
        client.connect(str(folder / HANDOVER_SOCKET))
        message, fds, _, _ = socket.recv_fds(client, 65536, MAX_LISTENERS)
    names = json.loads(message.decode().splitlines()[0])["listeners"]
    if len(names) != len(fds):
        for fd in fds:
            socket.close(fd)
        raise ElbError(f"the listener handover sent {len(fds)} sockets for {len(names)} names")
    return {str(name): socket.socket(fileno=fd) for name, fd in zip(names, fds, strict=True)}


def recorded_active(folder: Path) -> dict[str, int]:
    """Which socket of each pair got new connections, as the data plane of the Caddy whose
    folder is ``folder`` recorded last (`TargetLookupServer.record_active`); empty if
    nothing readable."""
    try:
        found = json.loads((folder / ACTIVE_FILE).read_bytes())
    except (OSError, ValueError):
        return {}
    if not isinstance(found, dict):
        return {}
    return {str(k): v for k, v in found.items() if v in (0, 1)}
