"""Images from snapshots: reproducible layers, the config, the build cache, blob store layout."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tarfile
from pathlib import Path

import pytest
from tests.local.ecr.conftest import CONFIG, make_snapshot

from fargo.local.ecr.blobs import BlobStore
from fargo.local.ecr.build import ImageReference, build_image
from fargo.local.ecr.oci import (
    CONFIG_MEDIA_TYPE,
    LAYER_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE,
    ImageConfig,
    host_platform,
    parse_config,
)


def files_under(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")}


def test_the_same_files_give_the_same_digests(tmp_path: Path) -> None:
    first = make_snapshot(tmp_path / "a")
    second = make_snapshot(tmp_path / "b", name="other-name")
    os.utime(second / "pkg" / "data.txt", (1e9, 1e9))  # mtimes and owners do not count
    a = build_image(BlobStore(tmp_path / "s1"), "app", first, CONFIG)
    b = build_image(BlobStore(tmp_path / "s2"), "app", second, CONFIG)
    assert (a.manifest_digest, a.config_digest, a.layer_digests) == (
        b.manifest_digest,
        b.config_digest,
        b.layer_digests,
    )
    (second / "pkg" / "data.txt").write_text("changed")
    c = build_image(BlobStore(tmp_path / "s2"), "app", second, CONFIG)
    assert c.layer_digests != a.layer_digests and c.manifest_digest != a.manifest_digest


def test_the_layer_is_normalised_and_leaves_out_the_marker(
    store: BlobStore, image: ImageReference
) -> None:
    (layer,) = image.layer_digests
    raw = store.read(layer)
    assert raw[4:8] == b"\0\0\0\0"  # gzip mtime 0
    with tarfile.open(store.path(layer)) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == [
        "current",
        "pkg",
        "pkg/__main__.py",
        "pkg/data.txt",
        "run.sh",
    ]
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == {
        (0, 0, "root", "root", 0)
    }
    modes = {m.name: m.mode for m in members}
    assert modes["run.sh"] == 0o755 and modes["pkg/data.txt"] == 0o644 and modes["pkg"] == 0o755
    assert members[0].issym() and members[0].linkname == "pkg"
    _, diff_ids, _ = parse_config(store.read(image.config_digest))
    assert diff_ids == ("sha256:" + hashlib.sha256(gzip.decompress(raw)).hexdigest(),)
    assert image.size == len(raw)


def test_the_config_carries_what_the_container_runs(
    store: BlobStore, image: ImageReference
) -> None:
    document = json.loads(store.read(image.config_digest))
    assert (document["architecture"], document["os"]) == host_platform()
    assert document["config"] == {
        "Cmd": ["python", "-m", "pkg"],
        "Env": ["PYTHONUNBUFFERED=1", "GREETING=a=b"],
        "WorkingDir": "/",
        "User": "10001:10001",
        "ExposedPorts": {"8080/tcp": {}},
    }
    config, _, _ = parse_config(store.read(image.config_digest))
    assert config == CONFIG and config.environment["GREETING"] == "a=b"
    manifest = json.loads(store.read(image.manifest_digest))
    assert manifest["mediaType"] == MANIFEST_MEDIA_TYPE
    assert manifest["config"]["mediaType"] == CONFIG_MEDIA_TYPE
    assert [layer["mediaType"] for layer in manifest["layers"]] == [LAYER_MEDIA_TYPE]


def test_a_warm_build_hits_the_cache_and_writes_nothing(
    store: BlobStore, snapshot: Path, image: ImageReference
) -> None:
    before = files_under(store.root)
    again = build_image(store, "team/app", snapshot, CONFIG, tags=["latest", "v1"])
    assert again.cached and again == ImageReference(**{**again.__dict__, "cached": True})
    assert again.manifest_digest == image.manifest_digest
    assert files_under(store.root) == before
    other = build_image(store, "team/app", snapshot, ImageConfig.of(cmd=["other"]))
    assert not other.cached and other.layer_digests == image.layer_digests  # config is in the key


def test_a_cache_entry_with_a_missing_blob_is_rebuilt(
    store: BlobStore, snapshot: Path, image: ImageReference
) -> None:
    store.path(image.layer_digests[0]).unlink()
    again = build_image(store, "team/app", snapshot, CONFIG)
    assert not again.cached and again.manifest_digest == image.manifest_digest
    assert store.has(image.layer_digests[0])


def test_a_folder_not_named_by_its_digest_is_always_tarred(tmp_path: Path) -> None:
    folder = make_snapshot(tmp_path, name="work")
    store = BlobStore(tmp_path / "ecr")
    first, second = (build_image(store, "app", folder, CONFIG) for _ in range(2))
    assert not first.cached and not second.cached
    assert first.manifest_digest == second.manifest_digest
    assert not any((store.root / "tmp").iterdir())
    keyed = [build_image(store, "app", folder, CONFIG, snapshot_digest="ab" * 32) for _ in "12"]
    assert [image.cached for image in keyed] == [False, True]


def test_repositories_link_and_tag_what_they_serve(store: BlobStore, image: ImageReference) -> None:
    assert store.tags("team/app") == ["latest", "v1"]
    assert store.resolve("team/app", "latest") == image.manifest_digest
    assert store.resolve("team/app", image.manifest_digest) == image.manifest_digest
    assert store.resolve("team/app", "nope") is None
    assert store.resolve("other", "latest") is None
    assert store.has_blob("team/app", image.config_digest)
    assert not store.has_blob("other", image.config_digest)
    assert not store.has_manifest("team/app", image.config_digest)
    assert image.uri == f"team/app@{image.manifest_digest}"


@pytest.mark.parametrize(
    ("repository", "tags"), [("Team/App", []), ("app/", []), ("app", ["bad tag"])]
)
def test_bad_names_are_refused(
    store: BlobStore, snapshot: Path, repository: str, tags: list[str]
) -> None:
    with pytest.raises(ValueError, match="invalid"):
        build_image(store, repository, snapshot, CONFIG, tags=tags)
