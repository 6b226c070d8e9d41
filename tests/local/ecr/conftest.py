"""ECR's wire side: a small snapshot, an image built from it, a registry serving it on loopback."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from tests.local.conftest import loopback

from fargo.local.ecr.blobs import BlobStore
from fargo.local.ecr.build import ImageReference, build_image
from fargo.local.ecr.distribution import RegistryServer
from fargo.local.ecr.oci import ImageConfig

CONFIG = ImageConfig.of(
    cmd=["python", "-m", "pkg"],
    env={"PYTHONUNBUFFERED": "1", "GREETING": "a=b"},
    working_dir="/",
    user="10001:10001",
    exposed_ports=[8080],
)


def from_address(source: str) -> Callable[[str, int], Awaitable[socket.socket]]:
    """A ``connect`` that opens the socket from ``source``, as a task's netns would."""

    async def connect(host: str, port: int) -> socket.socket:
        sock = socket.socket()
        sock.setblocking(False)
        sock.bind((source, 0))
        try:
            await asyncio.get_running_loop().sock_connect(sock, (host, port))
        except OSError:
            sock.close()
            raise
        return sock

    return connect


def make_snapshot(root: Path, name: str = "sha256-0123456789abcdef") -> Path:
    """A folder as ``LocalRegistry.push`` leaves it, marker file included."""
    snapshot = root / name
    (snapshot / "pkg").mkdir(parents=True)
    (snapshot / "pkg" / "__main__.py").write_text("print('hello')\n")
    (snapshot / "pkg" / "data.txt").write_text("x" * 5000)
    (snapshot / "run.sh").write_text("#!/bin/sh\nexec python -m pkg\n")
    (snapshot / "run.sh").chmod(0o700)
    (snapshot / "current").symlink_to("pkg")
    (snapshot / ".complete").write_text('{"command": ["python", "-m", "pkg"]}')
    return snapshot


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    return make_snapshot(tmp_path / "snapshots")


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "ecr")


@pytest.fixture
def image(store: BlobStore, snapshot: Path) -> ImageReference:
    return build_image(store, "team/app", snapshot, CONFIG, tags=["latest", "v1"])


@pytest.fixture
async def server(
    store: BlobStore, image: ImageReference, tmp_path: Path
) -> AsyncIterator[RegistryServer]:
    registry = RegistryServer(store, host=loopback(), log_path=tmp_path / "pulls.jsonl")
    await registry.start()
    yield registry
    await registry.stop()
