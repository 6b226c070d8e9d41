"""The registry server over real loopback sockets: the read side of the OCI distribution API."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from tests.local.conftest import loopback
from tests.local.ecr.conftest import from_address

from fargo.local.ecr.blobs import BlobStore
from fargo.local.ecr.build import ImageReference
from fargo.local.ecr.distribution import RegistryServer
from fargo.local.ecr.oci import MANIFEST_MEDIA_TYPE


async def fetch(
    server: RegistryServer, path: str, method: str = "GET", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, server.url + path, headers=headers) as answer,
    ):
        return answer.status, dict(answer.headers), await answer.read()


def error_code(body: bytes) -> str:
    document: Any = json.loads(body)
    return str(document["errors"][0]["code"])


async def test_the_base_endpoint_says_v2(server: RegistryServer) -> None:
    status, headers, body = await fetch(server, "/v2/")
    assert (status, json.loads(body)) == (200, {})
    assert headers["Docker-Distribution-API-Version"] == "registry/2.0"


async def test_manifests_by_tag_and_by_digest(
    server: RegistryServer, store: BlobStore, image: ImageReference
) -> None:
    for reference in ("latest", image.manifest_digest):
        status, headers, body = await fetch(server, f"/v2/team/app/manifests/{reference}")
        assert status == 200
        assert headers["Content-Type"] == MANIFEST_MEDIA_TYPE
        assert headers["Docker-Content-Digest"] == image.manifest_digest
        assert body == store.read(image.manifest_digest)


async def test_head_answers_headers_without_a_body(
    server: RegistryServer, store: BlobStore, image: ImageReference
) -> None:
    status, headers, body = await fetch(server, "/v2/team/app/manifests/v1", "HEAD")
    assert (status, body) == (200, b"")
    assert headers["Docker-Content-Digest"] == image.manifest_digest
    assert int(headers["Content-Length"]) == len(store.read(image.manifest_digest))
    layer = image.layer_digests[0]
    status, headers, body = await fetch(server, f"/v2/team/app/blobs/{layer}", "HEAD")
    assert (status, body) == (200, b"")
    assert (headers["Docker-Content-Digest"], int(headers["Content-Length"])) == (layer, image.size)


async def test_blobs_stream_whole_and_in_ranges(
    server: RegistryServer, store: BlobStore, image: ImageReference
) -> None:
    layer = image.layer_digests[0]
    status, headers, body = await fetch(server, f"/v2/team/app/blobs/{layer}")
    assert (status, body) == (200, store.read(layer))
    assert headers["Docker-Content-Digest"] == layer
    assert headers["Content-Type"] == "application/octet-stream"
    status, _, body = await fetch(server, f"/v2/team/app/blobs/{layer}", Range="bytes=0-9")
    assert (status, body) == (206, store.read(layer)[:10])


@pytest.mark.parametrize(
    ("path", "accept", "status", "code"),
    [
        ("/v2/team/app/manifests/nope", "", 404, "MANIFEST_UNKNOWN"),
        ("/v2/team/app/manifests/sha256:" + "0" * 64, "", 404, "MANIFEST_UNKNOWN"),
        (
            "/v2/team/app/manifests/latest",
            "application/vnd.docker.distribution.manifest.v2+json",
            404,
            "MANIFEST_UNKNOWN",
        ),
        ("/v2/team/other/manifests/latest", "", 404, "NAME_UNKNOWN"),
        ("/v2/Team/manifests/latest", "", 400, "NAME_INVALID"),
        ("/v2/team/app/manifests/md5:abc", "", 400, "DIGEST_INVALID"),
        ("/v2/team/app/blobs/sha256:" + "0" * 64, "", 404, "BLOB_UNKNOWN"),
        ("/v2/team/app/blobs/latest", "", 400, "DIGEST_INVALID"),
        ("/v2/_catalog", "", 404, "UNSUPPORTED"),
    ],
)
async def test_errors_have_the_spec_shape(
    server: RegistryServer, path: str, accept: str, status: int, code: str
) -> None:
    got, headers, body = await fetch(server, path, **({"Accept": accept} if accept else {}))
    assert (got, error_code(body)) == (status, code)
    assert headers["Content-Type"].startswith("application/json")


async def test_an_accept_listing_the_oci_type_among_others_is_served(
    server: RegistryServer,
) -> None:
    accept = "application/vnd.docker.distribution.manifest.v2+json, " + MANIFEST_MEDIA_TYPE
    status, _, _ = await fetch(server, "/v2/team/app/manifests/latest", Accept=accept)
    assert status == 200


async def test_a_blob_of_another_repository_is_unknown(
    server: RegistryServer, store: BlobStore, snapshot: Path, image: ImageReference
) -> None:
    store.link_manifest("other", image.manifest_digest)  # a repository without the blob links
    status, _, body = await fetch(server, f"/v2/other/blobs/{image.layer_digests[0]}")
    assert (status, error_code(body)) == (404, "BLOB_UNKNOWN")


async def test_tags_list_pages(server: RegistryServer) -> None:
    status, _, body = await fetch(server, "/v2/team/app/tags/list")
    assert (status, json.loads(body)) == (200, {"name": "team/app", "tags": ["latest", "v1"]})
    status, headers, body = await fetch(server, "/v2/team/app/tags/list?n=1")
    assert json.loads(body)["tags"] == ["latest"]
    assert headers["Link"] == '</v2/team/app/tags/list?n=1&last=latest>; rel="next"'
    status, _, body = await fetch(server, "/v2/team/app/tags/list?n=1&last=latest")
    assert json.loads(body)["tags"] == ["v1"]


@pytest.mark.parametrize("method", ["PUT", "POST", "PATCH", "DELETE"])
async def test_write_methods_are_unsupported(server: RegistryServer, method: str) -> None:
    for path in ("/v2/team/app/manifests/latest", "/v2/team/app/blobs/uploads/"):
        status, headers, body = await fetch(server, path, method)
        assert (status, error_code(body)) == (405, "UNSUPPORTED")
        assert headers["Allow"] == "GET, HEAD"


async def test_the_pull_log_records_the_peer_address(
    server: RegistryServer, image: ImageReference, tmp_path: Path
) -> None:
    source = loopback()
    host, port = server.address
    reader, writer = await asyncio.open_connection(sock=await from_address(source)(host, port))
    writer.write(b"GET /v2/team/app/manifests/latest HTTP/1.1\r\nHost: x\r\n\r\n")
    assert await reader.readexactly(12) == b"HTTP/1.1 200"
    writer.close()
    await fetch(server, "/v2/team/app/manifests/nope")
    seen, missing = server.pulls[-2:]
    assert (seen.source, seen.method, seen.repository, seen.reference, seen.status) == (
        source,
        "GET",
        "team/app",
        "latest",
        200,
    )
    assert seen.digest == image.manifest_digest
    assert (missing.source, missing.status, missing.digest) == ("127.0.0.1", 404, None)
    lines = (tmp_path / "pulls.jsonl").read_text().splitlines()
    assert json.loads(lines[-2])["source"] == source


async def test_the_log_is_bounded(store: BlobStore, image: ImageReference) -> None:
    server = RegistryServer(store, host=loopback(), log_size=3)
    await server.start()
    try:
        for _ in range(5):
            await fetch(server, "/v2/")
        assert len(server.pulls) == 3
    finally:
        await server.stop()


async def test_serves_on_a_socket_the_caller_bound(store: BlobStore, image: ImageReference) -> None:
    sock = socket.socket()
    sock.bind((loopback(), 0))
    server = RegistryServer(store)
    await server.start(sock)
    try:
        assert server.address == sock.getsockname()
        assert (await fetch(server, "/v2/"))[0] == 200
    finally:
        await server.stop()
    assert sock.fileno() == -1  # the server closed it


async def test_stop_is_idempotent_and_safe_after_a_failed_start(store: BlobStore) -> None:
    taken = socket.socket()
    taken.bind((loopback(), 0))
    taken.listen()
    host, port = taken.getsockname()
    server = RegistryServer(store, host=host, port=port)
    with taken, pytest.raises(OSError):
        await server.start()
    await server.stop()
    await server.stop()
    with pytest.raises(RuntimeError):
        server.address  # noqa: B018
    stopped = RegistryServer(store)
    await stopped.stop()


def test_validate_reports_problems_without_side_effects(tmp_path: Path) -> None:
    good = RegistryServer(BlobStore(tmp_path / "absent"), log_path=tmp_path / "pulls.jsonl")
    assert good.validate() == []
    (tmp_path / "file").write_text("")
    bad = RegistryServer(
        BlobStore(tmp_path / "file"), host="localhost", port=70000, log_path=tmp_path / "no/log"
    )
    assert len(bad.validate()) == 4
    assert not (tmp_path / "absent").exists() and not (tmp_path / "pulls.jsonl").exists()


async def test_it_serves_at_its_endpoints_too_and_logs_where_a_request_arrived(
    store: BlobStore, image: ImageReference
) -> None:
    """A VPC interface endpoint (ecr.dkr) is the same registry at another address."""
    endpoint = socket.socket()
    endpoint.bind((loopback(), 0))
    endpoint_host, endpoint_port = endpoint.getsockname()
    endpoint.close()  # a free port; the server binds it again through its factory
    server = RegistryServer(store, host=loopback(), endpoints=[(endpoint_host, endpoint_port)])
    await server.start()
    try:
        own = f"{server.address[0]}:{server.address[1]}"
        await fetch(server, "/v2/team/app/manifests/latest")
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"http://{endpoint_host}:{endpoint_port}/v2/team/app/manifests/latest"
            ) as answer,
        ):
            assert answer.status == 200
        direct, through_endpoint = server.pulls[-2:]
        assert direct.via == own
        assert through_endpoint.via == f"{endpoint_host}:{endpoint_port}"
        assert through_endpoint.digest == image.manifest_digest
    finally:
        await server.stop()
    with pytest.raises(OSError):  # the endpoint's socket is closed with the server
        socket.create_connection((endpoint_host, endpoint_port), timeout=1).close()


def test_validate_checks_the_endpoints_addresses(tmp_path: Path) -> None:
    server = RegistryServer(BlobStore(tmp_path / "absent"), endpoints=[("vpce", 5000)])
    assert server.validate() == ["host 'vpce' is not an IP address"]
