"""Conformance: a real OCI client, skopeo (Debian package ``skopeo``), reads the registry."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from fargo.local.ecr.blobs import BlobStore
from fargo.local.ecr.build import ImageReference
from fargo.local.ecr.distribution import RegistryServer

pytestmark = pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed")


async def skopeo(*args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        "skopeo",
        "--insecure-policy",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_skopeo_inspects_and_copies_the_image(
    server: RegistryServer, store: BlobStore, image: ImageReference, tmp_path: Path
) -> None:
    host, port = server.address
    source = f"docker://{host}:{port}/team/app:latest"
    inspected = json.loads(await skopeo("inspect", "--tls-verify=false", source))
    assert inspected["Digest"] == image.manifest_digest
    assert inspected["RepoTags"] == ["latest", "v1"]
    assert inspected["Layers"] == list(image.layer_digests)
    assert "PYTHONUNBUFFERED=1" in inspected["Env"]
    await skopeo("copy", "--src-tls-verify=false", source, f"dir:{tmp_path / 'copy'}")
    for digest in (image.config_digest, *image.layer_digests):
        copied = tmp_path / "copy" / digest.removeprefix("sha256:")
        assert copied.read_bytes() == store.read(digest)
    assert (tmp_path / "copy" / "manifest.json").read_bytes() == store.read(image.manifest_digest)
