"""Whether a link really carries packets yet, asked over rtnetlink (no exec).

A veth end brought up before its peer has no carrier; when the peer comes up, the
kernel activates the end's queueing discipline only once its link-watch worker has
handled the carrier event (asynchronously, usually within a millisecond, sometimes
more on a busy machine). Until then the end transmits through the ``noop`` qdisc,
which *drops*: a task that connects right after its interface was attached could
lose its first ARP reply and wait a second for the retry (seen: 2 connects in 60).
The same worker step marks the link operationally up (``IFF_RUNNING``) right before it
activates the qdisc (both under the RTNL lock); carrier (``IFF_LOWER_UP``) comes
earlier, so it is not enough. An attachment is complete when both ends run.

Usage::

    wait_until_ready(router, "eni0a1b2c3d")          # the router's end
    wait_until_ready(eni_namespace, "eth0")          # the interface's end
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import time
from dataclasses import dataclass

from fargo.local.ec2.errors import NamespaceError
from fargo.local.ec2.netns import NetworkNamespace

_NETLINK_ROUTE = 0
_RTM_GETLINK = 18
_NLMSG_ERROR = 2
_NLM_F_REQUEST = 1
_IFLA_IFNAME = 3
_IFF_UP = 0x1
_IFF_RUNNING = 0x40
_IFF_LOWER_UP = 0x10000
_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port
_IFINFO = struct.Struct("=BxHiII")  # ifinfomsg: family, type, index, flags, change
_ATTR = struct.Struct("=HH")  # rtattr: length, type


@dataclass(frozen=True)
class LinkState:
    up: bool  # administratively (ip link set up)
    carrier: bool  # the peer is up
    running: bool  # operationally up: link watch has handled the carrier, qdisc active

    @property
    def ready(self) -> bool:
        return self.up and self.carrier and self.running


def link_state(sock: socket.socket, name: str) -> LinkState:
    """The state of link ``name`` in the namespace ``sock`` (an rtnetlink socket) was made in."""
    ifname = name.encode() + b"\0"
    attribute = _ATTR.pack(_ATTR.size + len(ifname), _IFLA_IFNAME) + _pad(ifname)
    body = _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + attribute
    sock.send(_HEADER.pack(_HEADER.size + len(body), _RTM_GETLINK, _NLM_F_REQUEST, 1, 0) + body)
    reply = sock.recv(65536)
    _, kind, _, _, _ = _HEADER.unpack_from(reply)
    if kind == _NLMSG_ERROR:
        code = -struct.unpack_from("=i", reply, _HEADER.size)[0]
        raise OSError(code, f"link {name!r}: {os.strerror(code)}")
    _, _, _, flags, _ = _IFINFO.unpack_from(reply, _HEADER.size)
    return LinkState(
        up=bool(flags & _IFF_UP),
        carrier=bool(flags & _IFF_LOWER_UP),
        running=bool(flags & _IFF_RUNNING),
    )


def wait_until_ready(ns: NetworkNamespace, name: str, timeout: float = 2.0) -> LinkState:
    """Poll until link ``name`` in ``ns`` carries packets; raises NamespaceError after
    ``timeout`` seconds, saying what it is still missing."""
    deadline = time.monotonic() + timeout
    with ns.socket(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_ROUTE) as sock:
        sock.settimeout(timeout)
        while True:
            try:
                state = link_state(sock, name)
            except OSError as exc:
                if exc.errno != errno.ENODEV:
                    raise
                state = LinkState(up=False, carrier=False, running=False)
            if state.ready:
                return state
            if time.monotonic() > deadline:
                raise NamespaceError(
                    f"link {name!r} in namespace {ns.name!r} is not ready after {timeout} s "
                    f"({state}); the kernel did not activate it — check `dmesg`"
                )
            time.sleep(0.0005)


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)
