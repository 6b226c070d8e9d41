"""A veth end is ready only when it runs: up, with carrier, and activated by the kernel."""

from __future__ import annotations

import os
import socket

import pytest

from fargo.local.ec2.commands import ip_batch
from fargo.local.ec2.errors import NamespaceError
from fargo.local.ec2.link_state import link_state, wait_until_ready
from fargo.local.ec2.netns import NetworkNamespace

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="in-process namespaces need root")


def test_a_veth_end_is_ready_only_once_its_peer_runs_too():
    with NetworkNamespace.create("a") as a, NetworkNamespace.create("b") as b:
        ip_batch(a, [f"link add x type veth peer name y netns {b.path}", "link set x up"])
        with a.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0) as sock:
            lonely = link_state(sock, "x")
            assert (lonely.up, lonely.carrier, lonely.ready) == (True, False, False)
            with pytest.raises(OSError, match="No such device"):
                link_state(sock, "nope")
        with pytest.raises(NamespaceError, match="'x' in namespace 'a' is not ready"):
            wait_until_ready(a, "x", timeout=0.05)
        ip_batch(b, ["link set y up"])
        assert wait_until_ready(a, "x").ready
        assert wait_until_ready(b, "y").ready
