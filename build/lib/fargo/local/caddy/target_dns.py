"""How Caddy learns a target group's targets: A records of ``<group>.targets.fargo.``.

    resolver = TargetResolver()
    resolver.start()
    resolver.publish(target_records({"frontend": ["127.0.1.7:80"]}))
    resolver.address            # "udp/127.0.0.1:40123", for Caddy's dynamic upstreams
    dynamic_targets(spec, {"frontend": [Target("task-1", "127.0.1.7", 80)]})
    # {"frontend": DynamicTargets("frontend.targets.fargo.", 80)}
    resolver.stop()

A forward to one target group has Caddy look the group's targets up at the small
DNS server here (on a thread of its own, so a busy event loop never stalls a
request), every `TARGET_LOOKUP_REFRESH_SECONDS`. Targets then come and go without
loading a new config, which matters under load: at each config load Go's HTTP
server closes every keep-alive connection of the old config after its current
response, and a client that sent its next request on it at that moment sees the
connection drop. A group that cannot be looked up (targets on different ports, an
IPv6 target, more than fit one UDP answer) has its targets listed in the config.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
from collections.abc import Iterable, Mapping, Sequence

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from fargo.local.caddy.forward import TARGET_LOOKUP_REFRESH_SECONDS, DynamicTargets
from fargo.local.ec2.sockets import ServerSocketFactory, bind_socket
from fargo.local.elb.errors import ElbError
from fargo.local.elb.target_health import Target
from fargo.spec.model import Spec

TARGETS_ZONE = "targets.fargo."
# After a change of a group's targets, Caddy may use its previous lookup this long.
LOOKUP_SETTLE_SECONDS = TARGET_LOOKUP_REFRESH_SECONDS + 0.02
# A records that fit a 512-byte UDP answer; a larger group is listed in the config.
LOOKUP_MAX_TARGETS = 28


def lookup_name(target_group: str) -> str:
    """The name whose A records are ``target_group``'s routable targets."""
    return f"{target_group}.{TARGETS_ZONE}"


def target_records(routable: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Each group's lookup name → the IPs of its routable ``ip:port`` addresses."""
    return {
        lookup_name(group): [address.rpartition(":")[0] for address in addresses]
        for group, addresses in routable.items()
    }


def dynamic_targets(
    spec: Spec, targets: Mapping[str, Iterable[Target]]
) -> dict[str, DynamicTargets]:
    """Groups Caddy can look up: every target (and service) on one port, IPv4."""
    lookups = {}
    for group, registered in targets.items():
        members = list(registered)
        ports = {spec.services[s].port for s in spec.services_in(group)}
        ports |= {target.port for target in members}
        ipv4 = all(_is_ipv4(target.ip) for target in members)
        if len(ports) == 1 and ipv4 and len(members) <= LOOKUP_MAX_TARGETS:
            lookups[group] = DynamicTargets(lookup_name(group), ports.pop())
    return lookups


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


def _is_ipv4(ip: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(ip), ipaddress.IPv4Address)
    except ValueError:
        return False
