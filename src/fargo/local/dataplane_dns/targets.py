"""Caddy's target lookups, answered by a data-plane process (see `fargo.local.caddy.target_dns`).

    lookups = TargetLookupServer(state_dir, "caddy", bind=open_local)
    await lookups.start()      # a UDP socket on 127.0.0.1, answered by "caddy-targets"
    lookups.publish(target_records({"frontend": ["127.0.1.7:80"]}))
    lookups.address            # "udp/127.0.0.1:40123", for Caddy's dynamic upstreams
    await lookups.stop()

`publish` replaces the snapshot file (``caddy/targets.json``) before it returns, and the
process reads it at the next query: a target leaves traffic as fast as it did when the
control plane answered itself. When the control plane is killed or stopped, Caddy keeps
getting the last targets, instead of failing its lookups (and answering 503).
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from pathlib import Path

from fargo.local.dataplane_dns.process import DnsProcess
from fargo.local.dataplane_dns.snapshot import SnapshotFile, targets_snapshot
from fargo.local.ec2.sockets import ServerSocketFactory, bind_socket
from fargo.local.elb.errors import ElbError

SNAPSHOT_FILE = "targets.json"


class TargetLookupServer:
    """The DNS server Caddy asks for each target group's targets, in a process of its own."""

    def __init__(
        self, state_dir: Path, caddy_name: str, *, bind: ServerSocketFactory = bind_socket
    ) -> None:
        self._bind = bind
        self._snapshot = SnapshotFile(state_dir / caddy_name / SNAPSHOT_FILE, "targets")
        self._process = DnsProcess(
            state_dir,
            f"{caddy_name}-targets",
            "targets",
            self._snapshot.path,
            f"target lookups of {caddy_name}",
        )
        self._records: dict[str, list[str]] = {}
        self._socket: socket.socket | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def address(self) -> str:
        """Where Caddy sends its lookups, as a Caddy network address."""
        if self._socket is None:
            raise ElbError("the target resolver is not started")
        host, port = self._socket.getsockname()[:2]
        return f"udp/{host}:{port}"

    def publish(self, records: Mapping[str, Sequence[str]]) -> None:
        """Answer with ``records`` (lookup name → IPv4s) from the next query on."""
        self._records = {name: list(ips) for name, ips in records.items()}
        if self._socket is not None:
            self._snapshot.write(targets_snapshot(self._records))

    async def start(self) -> None:
        if self._socket is not None:
            return
        self._snapshot.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._socket = self._bind(socket.SOCK_DGRAM, "127.0.0.1", 0)
        try:
            self._snapshot.write(targets_snapshot(self._records))
            await self._process.start([self._socket])
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop answering; idempotent."""
        await self._process.stop()
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.close()
