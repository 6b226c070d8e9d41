"""The listeners' sockets: bound here, handed to Caddy as inherited file descriptors.

    sockets = bind_listeners(spec, bind={"public": "127.0.0.1"}, listener_port=mapped)
    # {"public-443": <socket 127.0.0.1:8443>, "public-80": <socket 127.0.0.1:8080>}
    listener_url(spec.load_balancers["public"].listeners[0], "127.0.0.1", 8443)
    # "https://127.0.0.1:8443"

Caddy would otherwise bind a fresh SO_REUSEPORT socket at every config load and
close the old one, resetting the connections in its accept queue. An inherited
socket stays the same across loads and Caddy restarts. It also makes "port in use"
an error here, naming the listener.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable, Mapping

from fargo.local.caddy.config import server_name
from fargo.local.ec2.hostport import host_port
from fargo.local.elb.errors import ElbError, ListenerAddressInUse
from fargo.spec.elb import Listener
from fargo.spec.model import Spec

LISTEN_BACKLOG = 1024


def listener_url(listener: Listener, address: str, port: int) -> str:
    """Where a listener is reached on the twin, e.g. ``https://127.0.0.1:8443``."""
    return f"{listener.protocol.lower()}://{host_port(address, port)}"


def bind_listeners(
    spec: Spec, *, bind: Mapping[str, str], listener_port: Callable[[int], int]
) -> dict[str, socket.socket]:
    """A listening socket per listener, by Caddy server name; none stays open on failure.

    Raises `ListenerAddressInUse` when another process has an address, `ElbError` when
    an address cannot be listened on for another reason.
    """
    sockets: dict[str, socket.socket] = {}
    try:
        for name, lb in spec.load_balancers.items():
            for listener in lb.listeners:
                sockets[server_name(name, listener)] = _listen(
                    name, listener, bind[name], listener_port(listener.port)
                )
    except BaseException:
        for sock in sockets.values():
            sock.close()
        raise
    return sockets


def _listen(load_balancer: str, listener: Listener, address: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(LISTEN_BACKLOG)
    except OSError as err:
        sock.close()
        where = host_port(address, port)
        what = f"listener {listener.protocol}:{listener.port} of load balancer {load_balancer}"
        if err.errno == errno.EADDRINUSE:
            raise ListenerAddressInUse(
                f"{where} ({what}) is in use by another process; stop it or free the port"
            ) from err
        raise ElbError(f"cannot listen on {where} ({what}): {err.strerror}") from err
    return sock
