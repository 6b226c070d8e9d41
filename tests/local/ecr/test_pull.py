"""Pulling as ECS's agent does, over real loopback sockets: verified, unpacked safely, cached."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import socket
import tarfile
from pathlib import Path

import pytest
from tests.local.conftest import free_port, loopback
from tests.local.ecr.conftest import CONFIG, from_address, make_snapshot

from fargo.local.ecr.blobs import BlobStore
from fargo.local.ecr.build import ImageReference, build_image
from fargo.local.ecr.distribution import RegistryServer
from fargo.local.ecr.oci import (
    CONFIG_MEDIA_TYPE,
    LAYER_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE,
    config_document,
    manifest_document,
)
from fargo.local.ecr.pull import CannotPullContainerError, pull


def blob_requests(server: RegistryServer) -> list[str]:
    return [p.path for p in server.pulls if "/blobs/" in p.path]


def leftovers(folder: Path) -> list[str]:
    return sorted(
        p.name for p in folder.iterdir() if p.name.startswith(".") and p.name != ".pulled"
    )


async def test_pull_unpacks_the_image_and_returns_its_config(
    server: RegistryServer, image: ImageReference, tmp_path: Path
) -> None:
    pulled = await pull(
        "team/app", "latest", registry_url=server.url, destination=tmp_path / "images" / "app"
    )
    assert (pulled.manifest_digest, pulled.config_digest, pulled.layer_digests) == (
        image.manifest_digest,
        image.config_digest,
        image.layer_digests,
    )
    assert pulled.config == CONFIG and pulled.config.argv == ("python", "-m", "pkg")
    assert not pulled.cached and pulled.root == tmp_path / "images" / "app"
    assert (pulled.root / "pkg" / "__main__.py").read_text() == "print('hello')\n"
    assert (pulled.root / "current").resolve() == (pulled.root / "pkg").resolve()
    assert not (pulled.root / ".complete").exists()
    assert leftovers(tmp_path / "images") == []
    assert len(blob_requests(server)) == 2  # config and the layer


async def test_pull_through_a_socket_the_caller_connects(
    server: RegistryServer, tmp_path: Path
) -> None:
    source = loopback()
    await pull(
        "team/app",
        "v1",
        registry_url=server.url,
        connect=from_address(source),
        destination=tmp_path / "app",
    )
    assert {p.source for p in server.pulls} == {source}
    assert [p.status for p in server.pulls] == [200, 200, 200]


async def test_an_image_pulled_before_is_not_pulled_again(
    server: RegistryServer, image: ImageReference, tmp_path: Path
) -> None:
    destination = tmp_path / "app"
    await pull("team/app", "latest", registry_url=server.url, destination=destination)
    requests = len(server.pulls)
    again = await pull("team/app", "v1", registry_url=server.url, destination=destination)
    assert again.cached and again.reference == "v1" and again.config == CONFIG
    assert len(server.pulls) == requests + 1 and len(blob_requests(server)) == 2  # one manifest GET
    by_digest = await pull(
        "team/app", image.manifest_digest, registry_url=server.url, destination=destination
    )
    assert by_digest.cached and len(server.pulls) == requests + 1  # no request at all


async def test_a_moved_tag_replaces_the_tree(
    server: RegistryServer, store: BlobStore, tmp_path: Path
) -> None:
    destination = tmp_path / "app"
    await pull("team/app", "latest", registry_url=server.url, destination=destination)
    changed = make_snapshot(tmp_path / "next", name="sha256-fedcba9876543210")
    (changed / "pkg" / "__main__.py").write_text("print('new')\n")
    newer = build_image(store, "team/app", changed, CONFIG, tags=["latest"])
    pulled = await pull("team/app", "latest", registry_url=server.url, destination=destination)
    assert not pulled.cached and pulled.manifest_digest == newer.manifest_digest
    assert (destination / "pkg" / "__main__.py").read_text() == "print('new')\n"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("which", ["manifest", "config", "layer"])
async def test_a_tampered_blob_is_refused(
    server: RegistryServer, store: BlobStore, image: ImageReference, tmp_path: Path, which: str
) -> None:
    digest = {
        "manifest": image.manifest_digest,
        "config": image.config_digest,
        "layer": image.layer_digests[0],
    }[which]
    path = store.path(digest)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(CannotPullContainerError, match="digest mismatch") as caught:
        await pull("team/app", "latest", registry_url=server.url, destination=tmp_path / "app")
    assert caught.value.reason == "digest_mismatch"
    assert not (tmp_path / "app").exists() and leftovers(tmp_path) == []


async def test_a_requested_digest_must_match(server: RegistryServer, tmp_path: Path) -> None:
    other = "sha256:" + "1" * 64
    with pytest.raises(CannotPullContainerError) as caught:
        await pull("team/app", other, registry_url=server.url, destination=tmp_path / "app")
    assert (caught.value.reason, caught.value.code) == ("not_found", "MANIFEST_UNKNOWN")


@pytest.mark.parametrize(
    ("repository", "tag", "code"),
    [("team/app", "nope", "MANIFEST_UNKNOWN"), ("team/none", "latest", "NAME_UNKNOWN")],
)
async def test_an_unknown_image_is_a_clear_error(
    server: RegistryServer, tmp_path: Path, repository: str, tag: str, code: str
) -> None:
    with pytest.raises(CannotPullContainerError) as caught:
        await pull(repository, tag, registry_url=server.url, destination=tmp_path / "app")
    error = caught.value
    assert (error.reason, error.code) == ("not_found", code)
    host, port = server.address
    assert f"{host}:{port}/{repository}:{tag}: not found" in str(error)


async def test_an_unreachable_registry_is_a_connect_error(tmp_path: Path) -> None:
    host = loopback()
    url = f"http://{host}:{free_port(host)}"
    with pytest.raises(CannotPullContainerError, match="failed to resolve/connect") as caught:
        await pull("team/app", "latest", registry_url=url, destination=tmp_path / "app")
    assert caught.value.reason == "connect"

    async def refused(host: str, port: int) -> socket.socket:
        raise ConnectionRefusedError(111, "Connection refused")

    async def silent(host: str, port: int) -> socket.socket:
        await asyncio.sleep(10)
        raise AssertionError("not reached")

    for connect in (refused, silent):
        with pytest.raises(CannotPullContainerError, match="failed to resolve/connect"):
            await pull(
                "team/app",
                "latest",
                registry_url=url,
                connect=connect,
                destination=tmp_path / "app",
                timeout=0.2,
            )


def put_image(
    store: BlobStore,
    members: list[tuple[str, bytes]],
    platform: tuple[str, str] | None = None,
    diff_id: str | None = None,
) -> None:
    """Tag ``evil:latest``: one hand-made layer, a config that vouches for it (or ``diff_id``)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    diff_id = diff_id or "sha256:" + hashlib.sha256(buffer.getvalue()).hexdigest()
    layer = store.put(gzip.compress(buffer.getvalue()), LAYER_MEDIA_TYPE)
    config = store.put(config_document(CONFIG, [diff_id], platform), CONFIG_MEDIA_TYPE)
    manifest = store.put(manifest_document(config, [layer]), MANIFEST_MEDIA_TYPE)
    for digest in (layer.digest, config.digest):
        store.link_blob("evil", digest)
    store.link_manifest("evil", manifest.digest)
    store.tag("evil", "latest", manifest.digest)


async def test_a_layer_escaping_its_folder_is_refused(
    server: RegistryServer, store: BlobStore, tmp_path: Path
) -> None:
    put_image(store, [("ok.txt", b"fine"), ("../escaped", b"evil")])
    destination = tmp_path / "images" / "evil"
    with pytest.raises(CannotPullContainerError, match="cannot unpack") as caught:
        await pull("evil", "latest", registry_url=server.url, destination=destination)
    assert caught.value.reason == "unpack"
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == []


async def test_an_image_for_another_platform_is_refused(
    server: RegistryServer, store: BlobStore, tmp_path: Path
) -> None:
    put_image(store, [("ok.txt", b"fine")], platform=("s390x", "linux"))
    with pytest.raises(CannotPullContainerError, match="linux/s390x") as caught:
        await pull("evil", "latest", registry_url=server.url, destination=tmp_path / "evil")
    assert caught.value.reason == "platform"


async def test_a_layer_must_unpack_to_the_diff_id_of_the_config(
    server: RegistryServer, store: BlobStore, tmp_path: Path
) -> None:
    put_image(store, [("ok.txt", b"fine")], diff_id="sha256:" + "2" * 64)
    with pytest.raises(CannotPullContainerError, match="unpacks to") as caught:
        await pull("evil", "latest", registry_url=server.url, destination=tmp_path / "evil")
    assert caught.value.reason == "digest_mismatch" and not (tmp_path / "evil").exists()
