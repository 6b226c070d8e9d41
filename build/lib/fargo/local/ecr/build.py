"""An OCI image from a pushed snapshot: one layer, a config, a manifest, tags.

``LocalRegistry.push`` leaves the image's files in a snapshot folder named after
their digest (``<repository>/sha256-<hex>/``); ``build_image`` turns it into an
image the registry server serves::

    store = BlobStore(state / "ecr")
    snapshot = LocalRegistry(state / "registry", project).push("backend", spec_image)
    image = build_image(store, "backend", snapshot.root,
                        ImageConfig.of(cmd=snapshot.command, working_dir="/"),
                        tags=["latest"])
    image.uri            # "backend@sha256:…"

The build cache: an image is a function of its files, its config and this
machine's platform. When the snapshot folder's name carries the digest of its
files (``sha256-<hex>``), or the caller passes ``snapshot_digest``, the key is
sha256 of (that digest, the config, the platform, the excluded names,
``LAYER_FORMAT``) and ``cache/<key>`` remembers the manifest digest; a hit costs
a few file reads and no tar. Snapshots are immutable, so the digest is enough —
a folder with any other name is always tarred (the layer is reproducible, so
the result is the same). A hit whose blobs went missing is rebuilt.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from fargo.local.ecr.blobs import BlobStore
from fargo.local.ecr.layer import write_layer
from fargo.local.ecr.oci import (
    CONFIG_MEDIA_TYPE,
    LAYER_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE,
    ImageConfig,
    canonical_json,
    config_document,
    host_platform,
    is_repository_name,
    is_tag,
    manifest_document,
    parse_manifest,
)

LAYER_FORMAT = "fargo-layer-1"  # bump when write_layer's output changes
SNAPSHOT_NAME = re.compile(r"(?:sha256[-:])?[0-9a-f]{16,64}")
DEFAULT_EXCLUDE = frozenset({".complete"})  # LocalRegistry's marker, not an image file


@dataclass(frozen=True)
class ImageReference:
    """A built image: where it lives and what it is made of."""

    repository: str
    manifest_digest: str
    config_digest: str
    layer_digests: tuple[str, ...]
    size: int  # bytes of the (compressed) layers, as ECR's imageSizeInBytes
    cached: bool = False  # True when the build cache answered

    @property
    def uri(self) -> str:
        return f"{self.repository}@{self.manifest_digest}"


def build_image(
    store: BlobStore,
    repository: str,
    snapshot_dir: Path,
    config: ImageConfig,
    tags: Sequence[str] = (),
    *,
    exclude: Collection[str] = DEFAULT_EXCLUDE,
    snapshot_digest: str | None = None,
) -> ImageReference:
    """Store ``snapshot_dir`` as an image of ``repository`` and point ``tags`` at it.

    ``snapshot_digest`` (e.g. ``LocalRegistry``'s full ``ImageManifest.digest``) keys
    the build cache instead of the folder's name."""
    if not is_repository_name(repository):
        raise ValueError(f"invalid repository name {repository!r}")
    if bad := [tag for tag in tags if not is_tag(tag)]:
        raise ValueError(f"invalid tags {bad}")
    if not snapshot_dir.is_dir():
        raise FileNotFoundError(f"no snapshot folder at {snapshot_dir}")
    key = cache_key(snapshot_digest or snapshot_dir.name, config, exclude)
    image = _from_cache(store, repository, key) if key else None
    if image is None:
        image = _build(store, repository, snapshot_dir, config, exclude)
        if key:
            store.remember(key, image.manifest_digest)
    for digest in (image.config_digest, *image.layer_digests):
        store.link_blob(repository, digest)
    store.link_manifest(repository, image.manifest_digest)
    for tag in tags:
        store.tag(repository, tag, image.manifest_digest)
    return image


def cache_key(snapshot: str, config: ImageConfig, exclude: Collection[str]) -> str | None:
    """The build-cache key for a snapshot's digest (``sha256-<hex>``, ``sha256:<hex>`` or
    ``<hex>``, at least 16 hex digits); None when ``snapshot`` is not one."""
    if not SNAPSHOT_NAME.fullmatch(snapshot):
        return None
    material = {
        "snapshot": snapshot,
        "config": config.to_oci(),
        "platform": list(host_platform()),
        "exclude": sorted(exclude),
        "format": LAYER_FORMAT,
    }
    return hashlib.sha256(canonical_json(material)).hexdigest()


def _build(
    store: BlobStore,
    repository: str,
    snapshot_dir: Path,
    config: ImageConfig,
    exclude: Collection[str],
) -> ImageReference:
    with store.writer() as blob:
        diff_id = write_layer(snapshot_dir, blob, exclude=exclude)
        layer = blob.commit(LAYER_MEDIA_TYPE)
    config_blob = store.put(config_document(config, [diff_id]), CONFIG_MEDIA_TYPE)
    manifest = store.put(manifest_document(config_blob, [layer]), MANIFEST_MEDIA_TYPE)
    return ImageReference(
        repository, manifest.digest, config_blob.digest, (layer.digest,), layer.size
    )


def _from_cache(store: BlobStore, repository: str, key: str) -> ImageReference | None:
    digest = store.cached(key)
    if digest is None:
        return None
    try:
        config, layers = parse_manifest(store.read(digest))
    except (OSError, ValueError):
        return None
    if not all(store.has(d.digest) for d in (config, *layers)):
        return None
    layer_digests = tuple(layer.digest for layer in layers)
    size = sum(layer.size for layer in layers)
    return ImageReference(repository, digest, config.digest, layer_digests, size, cached=True)
