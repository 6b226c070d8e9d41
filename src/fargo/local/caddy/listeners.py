"""The listeners' sockets: bound here, handed to Caddy as inherited file descriptors.

    sockets = bind_listeners(spec, bind={"public": "127.0.0.1"}, listener_port=mapped)
    # {"public-443": <socket 127.0.0.1:8443>, "public-80": <socket 127.0.0.1:8080>}

Caddy would otherwise bind a fresh SO_REUSEPORT socket at every config load and
close the old one, resetting the connections in its accept queue. An inherited
socket stays the same across loads and Caddy restarts. It also makes "port in use"
an error here, naming the listener.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Collection, Mapping

from fargo.local.caddy.config import server_name
from fargo.local.ec2.hostport import host_port
from fargo.local.ec2.network import ListenerPort
from fargo.local.ec2.sockets import ServerSocketFactory, bind_socket
from fargo.local.elb.errors import ElbError, ListenerAddressInUse
from fargo.spec.elb import Listener
from fargo.spec.model import Spec


def bind_listeners(
    spec: Spec,
    *,
    bind: Mapping[str, str],
    listener_port: ListenerPort,
    open_socket: ServerSocketFactory = bind_socket,
    bound: Collection[str] = (),
) -> dict[str, socket.socket]:
    """A listening socket per listener, by Caddy server name, but for those ``bound``
    already; none stays open on failure.

    Raises `ListenerAddressInUse` when another process has an address, `ElbError` when
    an address cannot be listened on for another reason.
    """
    sockets: dict[str, socket.socket] = {}
    try:
        for name, lb in spec.load_balancers.items():
            for listener in lb.listeners:
                if server_name(name, listener) in bound:
                    continue
                sockets[server_name(name, listener)] = _listen(
                    name, listener, bind[name], listener_port(name, listener.port), open_socket
                )
    except BaseException:
        for sock in sockets.values():
            sock.close()
        raise
    return sockets


def _listen(
    load_balancer: str,
    listener: Listener,
    address: str,
    port: int,
    open_socket: ServerSocketFactory,
) -> socket.socket:
    try:
        return open_socket(socket.SOCK_STREAM, address, port)
    except OSError as err:
        where = host_port(address, port)
        what = f"listener {listener.protocol}:{listener.port} of load balancer {load_balancer}"
        if err.errno == errno.EADDRINUSE:
            raise ListenerAddressInUse(
                f"{where} ({what}) is in use by another process; stop it or free the port"
            ) from err
        raise ElbError(f"cannot listen on {where} ({what}): {err.strerror}") from err
