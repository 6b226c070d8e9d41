"""Probing addresses before anything listens: which ``host:port`` is taken, and by what.

    problem = bind_problem("127.0.0.1", 8443, "load balancer 'public' listener 443")
    # "port 8443 on 127.0.0.1 is in use (load balancer 'public' listener 443): Address
    #  already in use; stop what holds it (`ss -ltnp 'sport = :8443'` shows it) or run
    #  `fargo down` if an earlier twin is still up"

A probe binds and closes at once, so parts can check their ports in ``validate``
without keeping anything open. Servers get their sockets from a `ServerSocketFactory`:
`bind_socket` here, or the network mode's, which binds inside the VPC's namespaces.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable


def bind_problem(
    host: str, port: int, what: str, kind: socket.SocketKind = socket.SOCK_STREAM
) -> str | None:
    """Why ``host:port`` cannot be bound for ``what``, or None if it can."""
    if port == 0:
        return None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            transport = "udp" if kind == socket.SOCK_DGRAM else "tcp"
            flag = "-lunp" if transport == "udp" else "-ltnp"
            return (
                f"port {port}/{transport} on {host} is in use ({what}): {err.strerror}; stop "
                f"what holds it (`ss {flag} 'sport = :{port}'` shows it) or run `fargo down` "
                "if an earlier twin is still up"
            )
    return None


ServerSocketFactory = Callable[[socket.SocketKind, str, int], socket.socket]
LISTEN_BACKLOG = 1024


def bind_socket(kind: socket.SocketKind, host: str, port: int) -> socket.socket:
    """A socket of ``kind`` bound to ``host:port`` in this process's network namespace
    (listening, for TCP); the network mode's factory makes them elsewhere."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return listen_on(socket.socket(family, kind), host, port)


def listen_on(sock: socket.socket, host: str, port: int) -> socket.socket:
    """Bind ``sock`` (made in some network namespace) to ``host:port``; listen, for TCP."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        if sock.type == socket.SOCK_STREAM:
            sock.listen(LISTEN_BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


async def connect(sock: socket.socket, host: str, port: int) -> socket.socket:
    """Connect ``sock`` (made in whichever namespace) without blocking; closed on failure."""
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
    except BaseException:
        sock.close()
        raise
    return sock
