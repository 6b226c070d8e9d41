"""A VPC's lifecycle in this process (root only): a failed start cleans up after
itself, close is idempotent and ends every namespace thread, a closed VPC refuses work."""

from __future__ import annotations

import os
import threading
from ipaddress import IPv4Address, IPv4Network

import pytest

from fargo.local.ec2.errors import InvalidSecurityGroup, InvalidVpcLayout, VpcClosed
from fargo.local.ec2.layout import VpcLayout
from fargo.local.ec2.security_groups import IngressRule, SecurityGroup
from fargo.local.ec2.vpc import Vpc

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="in-process namespaces need root")
N = IPv4Network
LAYOUT = VpcLayout(N("10.0.0.0/16"), (N("10.0.0.0/24"),), (N("10.0.10.0/24"),), nat_gateways=1)


def namespace_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("netns-")]


def test_a_failed_start_leaves_nothing_running():
    before = namespace_threads()
    broken = Vpc(LAYOUT, [SecurityGroup("a", [IngressRule("tcp", "ghost", 80)])])
    with pytest.raises(InvalidSecurityGroup, match="'ghost' does not exist"):
        broken.start()  # fails after the router and the internet were built
    assert namespace_threads() == before
    broken.close()  # still safe
    with pytest.raises(VpcClosed):
        broken.attach_network_interface(N("10.0.10.0/24"))


def test_an_invalid_layout_fails_before_anything_is_built():
    before = namespace_threads()
    with pytest.raises(InvalidVpcLayout):
        Vpc(VpcLayout(N("10.0.0.0/16"), (N("10.0.0.0/24"),), (), nat_gateways=2)).start()
    assert namespace_threads() == before


def test_close_ends_every_namespace_and_is_idempotent():
    before = namespace_threads()
    with Vpc(LAYOUT, [SecurityGroup("app")]).start() as vpc:
        eni = vpc.attach_network_interface(N("10.0.10.0/24"), security_groups=["app"])
        assert eni.ip == IPv4Address("10.0.10.4")  # the lowest free address
        assert vpc.security_groups.members("app") == {eni.ip}
        assert len(namespace_threads()) == len(before) + 4  # router, internet, NAT, task
        eni.detach()
        eni.detach()
        assert vpc.security_groups.members("app") == frozenset()
        assert not eni.attached
    assert namespace_threads() == before
    vpc.close()
    with pytest.raises(VpcClosed):
        _ = vpc.router
