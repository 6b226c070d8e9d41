"""Fixtures the service kit's tests share."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest


@pytest.fixture
def daemon() -> Iterator[socket.socket]:
    """A UDP socket on loopback standing for the X-Ray daemon (5 s to receive)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    yield sock
    sock.close()
