"""Shared by the load balancer tests: loopback addresses, a spec around load balancers, state."""

from __future__ import annotations

import random
import shutil
import socket
import ssl
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from fargo.local.acm.authority import CertificateAuthority
from fargo.local.caddy.data_plane import CaddyDataPlane
from fargo.local.caddy.process import CaddyProcess
from fargo.local.clock import TwinClock
from fargo.local.elb.load_balancing import ElasticLoadBalancing
from fargo.spec import parse_spec
from fargo.spec.model import Spec


def loopback() -> str:
    """A random 127.x address, so tests (and other suites) do not share ports."""
    return f"127.{random.randint(64, 250)}.{random.randint(0, 255)}.{random.randint(2, 250)}"


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def balancer_spec(name: str, load_balancers: str, target_groups: str) -> Spec:
    """A minimal valid spec named ``name`` around these (indented YAML) target groups and
    load balancers: one network, one image, one service ``app`` on port 8080."""
    return parse_spec(
        f"""
name: {name}
network:
  cidr: 10.0.0.0/16
  subnets: {{public: [10.0.0.0/24, 10.0.1.0/24], private: [10.0.10.0/24, 10.0.11.0/24]}}
images: {{app: {{dockerfile: app/Dockerfile}}}}
cluster: {{name: test}}
services:
  app: {{image: app, port: 8080}}
target_groups:
{target_groups}
load_balancers:
{load_balancers}
"""
    )


@pytest.fixture
def state_dir() -> Iterator[Path]:
    # Short on purpose: unix socket paths are limited to ~104 bytes.
    path = Path(tempfile.mkdtemp(prefix="fargo-elb-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def caddy_elb(
    spec: Spec,
    *,
    state_dir: Path,
    bind: Mapping[str, str],
    listener_port: Callable[[str, int], int],
    certificate: tuple[Path, Path] | None,
    time_scale: float = 0.1,
    on_unhealthy: Callable[[str, str], None] | None = None,
) -> ElasticLoadBalancing:
    """The load balancers of ``spec`` on a Caddy data plane, as the runtime composes them."""
    return ElasticLoadBalancing(
        spec,
        data_plane=CaddyDataPlane(
            spec,
            state_dir=state_dir,
            bind=bind,
            listener_port=listener_port,
            certificate=certificate,
        ),
        addresses=bind,
        listener_port=listener_port,
        clock=TwinClock(time_scale),
        on_unhealthy=on_unhealthy,
    )


def caddy_of(elb: ElasticLoadBalancing) -> CaddyProcess:
    data_plane = elb.data_plane
    assert isinstance(data_plane, CaddyDataPlane)
    return data_plane.caddy


def client_context(ca: CertificateAuthority) -> ssl.SSLContext:
    """A TLS client that trusts ``ca`` only (the CA counts as used from then on)."""
    assert ca.fingerprint  # loads (or creates) the CA and marks it used
    return ssl.create_default_context(cafile=str(ca.certificate_path))
