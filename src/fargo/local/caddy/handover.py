"""A listener as two sockets on one address, so a config load loses no new connection.

    pair = ListenerPair(bound_socket)   # a second socket beside it, SO_REUSEPORT
    pair.fd                             # the socket the next config listens on (fd/N)
    await pair.hand_over()              # before a load: new connections go to the other
    pair.fd                             # ... which the new config listens on
    pair.take_back()                    # the load failed: back to the first
    pair.close()

At each config load Caddy starts the new config's servers and stops the old ones with
Go's ``http.Server.Shutdown``, which closes every connection that is not in the middle
of a request. When both configs listen on one socket, the old servers keep accepting
until they stop, and a connection accepted in that moment is closed without an answer
(about 1 new connection in 100 during back-to-back loads). So each listener has two
sockets in one SO_REUSEPORT group, and a classic BPF program attached to the group
says which of them gets every new connection. Before a load, `hand_over` steers new
connections to the idle socket, waits until the old servers have accepted what was
queued on theirs and have read those requests, and the new config listens on the
idle socket only: the old servers get no new connection while they stop. (Their idle
keep-alive connections are still closed: a request sent on one at that instant is lost.)

A new control plane that takes over the listeners of a killed one's Caddy in another
network (VPC mode: a new VPC beside the old one) stands by: its Caddy listens on the
idle socket while the old Caddy keeps every new connection, until the new targets are
healthy and `take_traffic` steers new connections to it::

    pair.stand_by()                     # pair.fd: the idle socket; nothing steered yet
    await pair.take_traffic()           # new connections go there from now on
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import os
import socket
import struct
import threading
from collections.abc import Mapping
from pathlib import Path

from fargo.local.ec2.namespaces import CLONE_NEWNET, setns
from fargo.local.ec2.sockets import LISTEN_BACKLOG

SO_ATTACH_REUSEPORT_CBPF = 51  # linux/asm-generic/socket.h
SIOCGSKNS = 0x894C  # linux/sockios.h: the network namespace of a socket, as a descriptor
BPF_RET_K = 0x06  # BPF_RET | BPF_K: return a constant
TCP_INFO_UNACKED = 24  # offset of tcpi_unacked: a listening socket's accept queue length
# How long the old servers get to accept what was queued on their socket, then to read
# the requests on those connections (a client sends right after connecting).
DRAIN_TIMEOUT_SECONDS = 1.0
DRAIN_POLL_SECONDS = 0.005
SETTLE_SECONDS = 0.05


class ListenerPair:
    """Two listening sockets on one address; new connections go to the active one."""

    def __init__(self, first: socket.socket) -> None:
        """``first`` is bound and listening (made by a network mode's socket factory); the
        second is made in the same network namespace and bound to the same address."""
        first.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        second = _socket_beside(first)
        try:
            second.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            second.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            second.bind(first.getsockname())
            second.listen(LISTEN_BACKLOG)
        except BaseException:
            second.close()
            raise
        self.sockets = (first, second)  # indexes in the group: the order they listened in
        self.active = 0
        # the active socket gets no connection yet: another process's Caddy has them
        self.standing_by = False
        _steer(first, self.active)

    @classmethod
    def adopted(cls, sockets: tuple[socket.socket, socket.socket], active: int) -> ListenerPair:
        """The pair a killed control plane made, handed over with ``active`` its last
        active index (the socket its Caddy listens on)."""
        pair = cls.__new__(cls)
        pair.sockets = sockets
        pair.active = active if active in (0, 1) else 0
        pair.standing_by = False
        return pair

    @property
    def fd(self) -> int:
        """The descriptor of the active socket: the one the next config listens on."""
        return self.sockets[self.active].fileno()

    @property
    def steered(self) -> int:
        """The index of the socket new connections go to (the other one when standing by)."""
        return 1 - self.active if self.standing_by else self.active

    def queued(self) -> list[int]:
        """Connections waiting in each socket's accept queue."""
        return [_accept_queue(sock) for sock in self.sockets]

    async def hand_over(self) -> bool:
        """Steer new connections to the other socket and wait until the servers on the
        old one have taken and read what was queued there; whether it did. Standing by,
        there is nothing to hand over: no connection comes to the active socket yet."""
        if self.standing_by:
            return False
        self.stand_by()
        await self.take_traffic()
        return True

    def take_back(self) -> None:
        """Undo a `hand_over` that happened (the load failed: Caddy still listens on the
        other socket)."""
        self.active = 1 - self.active
        _steer(self.sockets[0], self.active)

    def stand_by(self) -> None:
        """Make the idle socket the active one (the next config listens on it) while new
        connections still go to the other, until `take_traffic`."""
        self.active = 1 - self.active
        self.standing_by = True

    async def take_traffic(self) -> None:
        """Steer new connections to the active socket and wait until the servers on the
        other one have taken and read what was queued there."""
        old = self.sockets[1 - self.active]
        _steer(old, self.active)
        self.standing_by = False
        for _ in range(round(DRAIN_TIMEOUT_SECONDS / DRAIN_POLL_SECONDS)):
            if not _accept_queue(old):
                break
            await asyncio.sleep(DRAIN_POLL_SECONDS)
        await asyncio.sleep(SETTLE_SECONDS)

    def shutdown(self) -> None:
        """Stop listening in every process that holds the sockets (connections are refused)."""
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


def _steer(sock: socket.socket, index: int) -> None:
    """Attach ``return index`` to the socket's SO_REUSEPORT group: every new connection
    goes to the group's socket at that index."""
    program = ctypes.create_string_buffer(struct.pack("HBBI", BPF_RET_K, 0, 0, index))
    # struct sock_fprog: unsigned short len; (padding) struct sock_filter *filter;
    fprog = struct.pack("HxxxxxxP", 1, ctypes.addressof(program))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog)


def _accept_queue(sock: socket.socket) -> int:
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, TCP_INFO_UNACKED + 4)
    (queued,) = struct.unpack_from("I", info, TCP_INFO_UNACKED)
    return int(queued)


def _socket_beside(sock: socket.socket) -> socket.socket:
    """A new socket like ``sock``, in the network namespace ``sock`` was made in."""
    if in_this_namespace(sock):
        return socket.socket(sock.family, sock.type)
    # Another namespace: one the twin made, so it may enter it (also rootless).
    namespace = fcntl.ioctl(sock.fileno(), SIOCGSKNS)
    try:
        made: list[socket.socket] = []
        failed: list[BaseException] = []

        def make() -> None:  # a thread of its own enters the namespace, then ends
            try:
                setns(namespace, CLONE_NEWNET)
                made.append(socket.socket(sock.family, sock.type))
            except BaseException as err:
                failed.append(err)

        thread = threading.Thread(target=make, name="socket beside")
        thread.start()
        thread.join()
        if failed:
            raise failed[0]
        return made[0]
    finally:
        os.close(namespace)


def in_this_namespace(sock: socket.socket) -> bool:
    """Whether ``sock`` is in this thread's network namespace: its inode is among the TCP
    sockets the namespace lists (needs no privilege, unlike asking for its namespace)."""
    inode = str(os.fstat(sock.fileno()).st_ino)
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(f"/proc/thread-self/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 9 and fields[9] == inode:
                    return True
    return False


def flat(pairs: Mapping[str, ListenerPair]) -> dict[str, socket.socket]:
    """Every socket of ``pairs`` by ``<name>#<index>``: how they are kept and handed over."""
    return {
        f"{name}#{i}": sock for name, pair in pairs.items() for i, sock in enumerate(pair.sockets)
    }


def paired(
    sockets: Mapping[str, socket.socket], active: Mapping[str, int]
) -> dict[str, ListenerPair]:
    """Undo `flat`, each pair with its ``active`` index; raises ValueError (closing every
    socket) when a pair is incomplete."""
    names = {key.rpartition("#")[0] for key in sockets}
    missing = [f"{n}#{i}" for n in sorted(names) for i in (0, 1) if f"{n}#{i}" not in sockets]
    if missing or len(sockets) != 2 * len(names):
        for sock in sockets.values():
            sock.close()
        raise ValueError(f"the listener handover is incomplete (missing {', '.join(missing)})")
    return {
        name: ListenerPair.adopted(
            (sockets[f"{name}#0"], sockets[f"{name}#1"]), active.get(name, 0)
        )
        for name in names
    }
