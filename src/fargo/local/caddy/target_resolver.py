"""Caddy's target lookups answered: a DNS server on 127.0.0.1 for ``<group>.targets.fargo.``.

    resolver = TargetResolver()
    resolver.start()
    resolver.publish(target_records({"frontend": ["127.0.1.7:80"]}))   # caddy.target_dns
    resolver.address            # "udp/127.0.0.1:40123", for Caddy's dynamic upstreams
    resolver.stop()

It runs in the data plane's targets process (`fargo.local.dataplane_dns.serve`), which
imports only this, dnspython and the standard library: it starts in a few hundredths
of a second beside the load balancers.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Mapping, Sequence

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from fargo.local.ec2.sockets import ServerSocketFactory, bind_socket
from fargo.local.elb.errors import ElbError


class TargetResolver:
    """A DNS server on 127.0.0.1 answering A queries from a snapshot, on a thread of its own.

    Caddy asks it for a group's targets every 0.1 s; answering off the event loop keeps
    requests flowing while the control plane is busy. `publish` swaps the snapshot.
    """

    def __init__(self, *, bind: ServerSocketFactory = bind_socket) -> None:
        self._bind = bind
        self._records: dict[str, tuple[str, ...]] = {}  # lower-case absolute name -> IPv4s
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def address(self) -> str:
        """Where Caddy sends its lookups, as a Caddy network address."""
        if self._socket is None:
            raise ElbError("the target resolver is not started")
        host, port = self._socket.getsockname()[:2]
        return f"udp/{host}:{port}"

    def publish(self, records: Mapping[str, Sequence[str]]) -> None:
        self._records = {name.lower(): tuple(ips) for name, ips in records.items()}

    def start(self) -> None:
        if self._socket is not None:
            return
        sock = self._bind(socket.SOCK_DGRAM, "127.0.0.1", 0)
        sock.settimeout(0.2)  # how soon `stop` is noticed
        self._socket = sock
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._serve, args=(sock,), name="elb-target-resolver", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop answering; idempotent."""
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.close()

    def _serve(self, sock: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                wire, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            reply = self.reply(wire)
            if reply is not None:
                with contextlib.suppress(OSError):
                    sock.sendto(reply, peer)

    def reply(self, wire: bytes) -> bytes | None:
        """The answer to one query (None: not a query worth answering)."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        if query.flags & dns.flags.QR or len(query.question) != 1:
            return None
        question = query.question[0]
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        addresses = self._records.get(question.name.to_text().lower())
        if addresses is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.A and addresses:
            response.answer.append(
                dns.rrset.from_text_list(
                    question.name, 0, dns.rdataclass.IN, dns.rdatatype.A, list(addresses)
                )
            )
        return response.to_wire()
