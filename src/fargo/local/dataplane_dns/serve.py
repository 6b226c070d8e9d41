"""The data-plane DNS process itself: answer on inherited sockets from a snapshot file.

    python -m fargo.local.dataplane_dns targets .fargo/caddy/targets.json --ready-fd 5 --fd=6
    python -m fargo.local.dataplane_dns discovery .fargo/dns/discovery.json --ready-fd 5 \
        --fd=6 --fd=7

``targets``: Caddy's target lookups (`fargo.local.caddy.target_resolver.TargetResolver`) on one
UDP socket; it also keeps the load balancers' listening sockets (``--listener``) and
hands them to the next control plane (``--handover``), so a new Caddy can serve on them
beside the running one. ``discovery``: Cloud Map's DNS (`fargo.local.cloudmap.dns_server.DnsServer`)
on a UDP and a TCP socket. Each query is answered from the snapshot as the file is at
that moment (`fargo.local.dataplane_dns.snapshot`). Once serving it writes ``ready`` to
``--ready-fd``; it stops on SIGTERM or SIGINT, and only then.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import threading
from collections.abc import Sequence
from pathlib import Path

from fargo.local.caddy.target_resolver import TargetResolver
from fargo.local.cloudmap.dns_server import DnsServer
from fargo.local.dataplane_dns.process import READY
from fargo.local.dataplane_dns.snapshot import (
    SnapshotError,
    SnapshotFile,
    SnapshotZones,
    targets_from_snapshot,
)

logger = logging.getLogger("fargo.dataplane_dns")

KINDS = ("targets", "discovery")


class SnapshotTargetResolver(TargetResolver):
    """`TargetResolver` whose records are the snapshot file's, as it is at each query."""

    def __init__(self, snapshot: SnapshotFile, sock: socket.socket) -> None:
        super().__init__(bind=lambda kind, host, port: sock)
        self._snapshot = snapshot

    def reply(self, wire: bytes) -> bytes | None:
        data = self._snapshot.changed()
        if data is not None:
            try:
                self.publish(targets_from_snapshot(data))
            except (SnapshotError, TypeError, AttributeError) as err:
                logger.warning("keeping the last targets: %s", err)
        return super().reply(wire)


class InheritedSockets:
    """A `ServerSocketFactory` handing out the sockets this process was given, by kind."""

    def __init__(self, sockets: Sequence[socket.socket]) -> None:
        self._sockets = list(sockets)

    def __call__(self, kind: socket.SocketKind, host: str, port: int) -> socket.socket:
        for sock in self._sockets:
            if sock.type == kind:
                return sock
        raise OSError(f"no inherited {kind.name} socket")


class ListenerKeeper:
    """Holds the load balancers' listening sockets and hands copies to whoever connects
    to ``path`` (the next control plane, after this one's was killed): one JSON line of
    their names, with the sockets as SCM_RIGHTS. ``path`` is in the owner-only state
    folder, and the socket itself is made owner-only."""

    def __init__(self, path: Path, listeners: dict[str, socket.socket]) -> None:
        self.path = path
        self.listeners = listeners
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)

    def start(self) -> None:
        self.path.unlink(missing_ok=True)
        self._server.bind(str(self.path))
        os.chmod(self.path, 0o600)
        self._server.listen(4)
        threading.Thread(target=self._serve, name="listener-keeper", daemon=True).start()

    def _serve(self) -> None:
        names = list(self.listeners)
        fds = [self.listeners[name].fileno() for name in names]
        message = (json.dumps({"listeners": names}) + "\n").encode()
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with client, contextlib.suppress(OSError):
                socket.send_fds(client, [message], fds)


async def serve(
    kind: str,
    snapshot_path: Path,
    sockets: Sequence[socket.socket],
    ready: int,
    keeper: ListenerKeeper | None = None,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    snapshot = SnapshotFile(snapshot_path, kind)
    snapshot.hold_folder()  # before READY: its own run's folder, even once set aside
    host, port = sockets[0].getsockname()[:2]
    resolver: SnapshotTargetResolver | None = None
    server: DnsServer | None = None
    if kind == "targets":
        resolver = SnapshotTargetResolver(snapshot, sockets[0])
        resolver.start()
    else:
        server = DnsServer(SnapshotZones(snapshot), host, port, bind=InheritedSockets(sockets))
        await server.start()
    logger.info(
        "answering %s lookups on %s:%s from %s (pid %d)",
        kind,
        host,
        port,
        snapshot_path,
        os.getpid(),
    )
    if keeper is not None:
        keeper.start()
    os.write(ready, READY)
    os.close(ready)
    await stop.wait()
    logger.info("stopping")
    if resolver is not None:
        resolver.stop()
    if server is not None:
        await server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fargo.local.dataplane_dns")
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("snapshot", type=Path)
    parser.add_argument("--ready-fd", type=int, required=True)
    parser.add_argument("--fd", type=int, action="append", default=[])
    parser.add_argument("--listener", action="append", default=[], help="NAME=FD to keep")
    parser.add_argument("--handover", type=Path, help="unix socket handing the listeners over")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    sockets = [socket.socket(fileno=fd) for fd in args.fd]
    if not sockets:
        parser.error("at least one --fd is needed")
    listeners = {
        name: socket.socket(fileno=int(fd))
        for name, _, fd in (item.rpartition("=") for item in args.listener)
    }
    keeper = ListenerKeeper(args.handover, listeners) if args.handover and listeners else None
    asyncio.run(serve(args.kind, args.snapshot, sockets, args.ready_fd, keeper))
    return 0
