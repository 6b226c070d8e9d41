"""A listener's two sockets: new connections go to the active one only, also in a namespace.

The Caddy-level proof (config loads under load lose no new connection) is in
`tests.local.test_caddy_reload`.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import socket
from collections.abc import Iterator

import pytest

from fargo.local.caddy.handover import (
    SIOCGSKNS,
    ListenerPair,
    flat,
    in_this_namespace,
    paired,
)
from fargo.local.ec2.netns import NetworkNamespace

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="in-process namespaces need root")


@pytest.fixture
def pair() -> Iterator[ListenerPair]:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    made = ListenerPair(sock)
    yield made
    made.close()


def taken_by(pair: ListenerPair, connect: socket.socket) -> list[int]:
    """Connect ``connect`` to the pair's address: which sockets queued the connection."""
    connect.connect(pair.sockets[0].getsockname())
    queued = pair.queued()
    for sock, waiting in zip(pair.sockets, queued, strict=True):
        if waiting:
            sock.accept()[0].close()
    connect.close()
    return [index for index, waiting in enumerate(queued) if waiting]


async def test_new_connections_go_to_the_active_socket_only(pair: ListenerPair) -> None:
    first, second = (sock.fileno() for sock in pair.sockets)
    assert pair.fd == first
    assert [taken_by(pair, socket.socket()) for _ in range(5)] == [[0]] * 5
    await pair.hand_over()
    assert pair.fd == second
    assert [taken_by(pair, socket.socket()) for _ in range(5)] == [[1]] * 5
    pair.take_back()  # a load that failed
    assert pair.fd == first
    assert [taken_by(pair, socket.socket()) for _ in range(5)] == [[0]] * 5


def test_a_socket_of_this_namespace_is_found_without_privilege(pair: ListenerPair) -> None:
    """Rootless VPC mode may not ask for the host namespace (SIOCGSKNS needs CAP_NET_ADMIN
    there): a socket of this thread's namespace is found in its TCP table instead."""
    assert all(in_this_namespace(sock) for sock in pair.sockets)


def test_shutdown_stops_both_sockets_listening(pair: ListenerPair) -> None:
    address = pair.sockets[0].getsockname()
    pair.shutdown()
    with pytest.raises(ConnectionRefusedError), socket.socket() as client:
        client.connect(address)


@needs_root
async def test_the_second_socket_is_made_in_the_first_ones_namespace() -> None:
    with NetworkNamespace.create("t") as ns:
        first = ns.socket()
        first.bind(("127.0.0.1", 0))
        first.listen(16)
        pair = ListenerPair(first)
        try:
            namespaces = [_namespace(sock) for sock in pair.sockets]
            assert namespaces[0] == namespaces[1] != os.stat("/proc/self/ns/net").st_ino
            assert not in_this_namespace(first)  # not asked for its namespace without need
            await pair.hand_over()
            assert taken_by(pair, ns.socket()) == [1]  # reached from inside, on the second
        finally:
            pair.close()


def _namespace(sock: socket.socket) -> int:
    descriptor = fcntl.ioctl(sock.fileno(), SIOCGSKNS)
    try:
        return os.fstat(descriptor).st_ino
    finally:
        os.close(descriptor)


def test_a_pair_handed_over_to_another_control_plane_keeps_its_active_socket(
    pair: ListenerPair,
) -> None:
    # What a crashed control plane's pair looks like to the next one: its two sockets by
    # name (as its target lookup process keeps them) and the active index it recorded.
    kept = {
        key: socket.socket(fileno=os.dup(sock.fileno()))
        for key, sock in flat({"public-443": pair}).items()
    }
    assert sorted(kept) == ["public-443#0", "public-443#1"]
    asyncio.run(pair.hand_over())  # the crashed run's last config listened on socket 1
    taken = paired(kept, {"public-443": pair.active})["public-443"]
    assert taken.active == 1
    assert taken_by(taken, socket.socket()) == [1]
    asyncio.run(taken.hand_over())  # the new Caddy listens on the other one
    assert taken_by(taken, socket.socket()) == [0]
    taken.close()


async def test_standing_by_the_idle_socket_is_active_and_gets_no_connection_until_it_takes_traffic(
    pair: ListenerPair,
) -> None:
    """A VPC take-over: the new Caddy listens on the idle socket while the old one, in the
    old VPC, keeps every new connection until the new tasks are healthy."""
    kept = {
        key: socket.socket(fileno=os.dup(sock.fileno()))
        for key, sock in flat({"public-443": pair}).items()
    }
    taken = paired(kept, {"public-443": 0})["public-443"]
    taken.stand_by()
    assert taken.fd == taken.sockets[1].fileno()  # where the new Caddy's config listens
    assert taken.steered == 0  # recorded for a take-over of this take-over
    assert [taken_by(taken, socket.socket()) for _ in range(3)] == [[0]] * 3
    assert await taken.hand_over() is False  # a config load meanwhile hands nothing over
    assert taken.fd == taken.sockets[1].fileno()
    assert [taken_by(taken, socket.socket()) for _ in range(3)] == [[0]] * 3
    await taken.take_traffic()
    assert not taken.standing_by and taken.steered == 1
    assert [taken_by(taken, socket.socket()) for _ in range(3)] == [[1]] * 3
    await taken.hand_over()  # from now on, loads hand over as usual
    assert [taken_by(taken, socket.socket()) for _ in range(3)] == [[0]] * 3
    taken.close()


def test_an_incomplete_handover_is_refused_and_its_sockets_closed(pair: ListenerPair) -> None:
    only = socket.socket(fileno=os.dup(pair.sockets[0].fileno()))
    with pytest.raises(ValueError, match="public-443#1"):
        paired({"public-443#0": only}, {})
    assert only.fileno() == -1
