"""Pulling an image as ECS's agent does: resolve the manifest, fetch and verify, unpack.

``pull`` fetches the manifest (checked against the digest asked for and the
registry's ``Docker-Content-Digest``), the config and every layer (sha256 and
size checked while streaming), then unpacks the layers — each checked against
the config's ``rootfs.diff_ids`` — into a fresh folder beside ``destination``
and renames it into place: a reader sees the old tree or the new, never half::

    image = await pull("backend", "latest", registry_url="http://198.51.100.1:5000",
                       connect=open_in_task_netns, destination=state / "images" / "backend")
    image.config.argv, image.config.environment, image.root

The cache: ``<destination's parent>/.pulled/<destination name>.json`` records
the manifest digest last unpacked there. A pull that resolves to that digest
(known up front for ``repo@sha256:…``; after one manifest GET for a tag) returns
it with ``cached=True`` and fetches no blob. Pulls into one destination queue.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tarfile
import tempfile
import uuid
import weakref
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from fargo.local.ecr.client import CannotPullContainerError, Connect, RegistryClient
from fargo.local.ecr.layer import UnsafeLayerError, extract_layer
from fargo.local.ecr.oci import (
    LAYER_MEDIA_TYPE,
    Descriptor,
    ImageConfig,
    host_platform,
    is_digest,
    is_repository_name,
    is_tag,
    parse_config,
    parse_manifest,
)
from fargo.local.state.files import write_atomically

__all__ = ["CannotPullContainerError", "Connect", "PulledImage", "pull"]

_LOCKS: weakref.WeakValueDictionary[Path, asyncio.Lock] = weakref.WeakValueDictionary()


@dataclass(frozen=True)
class PulledImage:
    """An image unpacked at ``root``, with what to run from it."""

    repository: str
    reference: str
    manifest_digest: str
    config_digest: str
    layer_digests: tuple[str, ...]
    config: ImageConfig
    platform: tuple[str, str]  # (architecture, os)
    root: Path
    cached: bool = False


async def pull(
    repository: str,
    reference: str,
    *,
    registry_url: str,
    connect: Connect | None = None,
    destination: Path,
    timeout: float = 30.0,
) -> PulledImage:
    """Pull ``repository:reference`` (a tag or ``sha256:…`` digest) into ``destination``.

    ``connect(host, port)``, if given, returns a connected socket to the registry
    (made, say, in a task's network namespace); without it aiohttp connects.
    ``timeout`` bounds connecting and each read. Raises ``CannotPullContainerError``.
    """
    if not is_repository_name(repository) or not (is_tag(reference) or is_digest(reference)):
        raise CannotPullContainerError("invalid", f"invalid image {repository}:{reference}")
    destination = _prepare(destination)
    lock = _LOCKS.setdefault(destination, asyncio.Lock())
    async with lock:
        if is_digest(reference) and (hit := _cached(destination, reference)):
            return replace(hit, repository=repository, reference=reference)
        try:
            client = RegistryClient(registry_url, connect=connect, timeout=timeout)
        except ValueError as error:
            raise CannotPullContainerError("invalid", str(error)) from error
        async with client as registry:
            return await _pull(registry, repository, reference, destination)


async def _pull(
    registry: RegistryClient, repository: str, reference: str, destination: Path
) -> PulledImage:
    digest, body = await registry.manifest(repository, reference)
    if hit := _cached(destination, digest):
        return replace(hit, repository=repository, reference=reference)
    image = f"{registry.host}/{repository}@{digest}"
    try:
        config_blob, layers = parse_manifest(body)
    except ValueError as error:
        raise CannotPullContainerError("invalid", f"{image}: {error}") from error
    config_body = await registry.blob_bytes(repository, config_blob)
    config, diff_ids, platform = _config(image, config_body, layers)
    pulled = PulledImage(
        repository,
        reference,
        digest,
        config_blob.digest,
        tuple(layer.digest for layer in layers),
        config,
        platform,
        destination,
    )
    workspace = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    files = [workspace / f"layer-{index}" for index in range(len(layers))]
    try:
        for path, layer in zip(files, layers, strict=True):
            with path.open("wb") as out:
                await registry.blob_to(repository, layer, out)
    except BaseException:
        shutil.rmtree(workspace, ignore_errors=True)
        raise
    # The thread owns the workspace from here: a cancelled pull cannot delete it under it.
    await asyncio.to_thread(_unpack, pulled, files, layers, diff_ids, workspace)
    return pulled


def _prepare(destination: Path) -> Path:
    destination = destination.absolute()
    destination.parent.mkdir(parents=True, exist_ok=True)
    return destination


def _config(
    image: str, body: bytes, layers: Sequence[Descriptor]
) -> tuple[ImageConfig, tuple[str, ...], tuple[str, str]]:
    try:
        config, diff_ids, platform = parse_config(body)
    except ValueError as error:
        raise CannotPullContainerError("invalid", f"{image}: bad image config: {error}") from error
    if len(diff_ids) != len(layers):
        message = f"{image}: {len(layers)} layers but {len(diff_ids)} diff_ids"
        raise CannotPullContainerError("invalid", message)
    if platform != host_platform():
        wanted, here = "/".join(platform[::-1]), "/".join(host_platform()[::-1])
        message = f"{image}: image platform {wanted} does not match this machine's {here}"
        raise CannotPullContainerError("platform", message)
    return config, diff_ids, platform


def _unpack(
    pulled: PulledImage,
    files: list[Path],
    layers: Sequence[Descriptor],
    diff_ids: Sequence[str],
    workspace: Path,
) -> None:
    """Apply the layers in order into ``workspace/rootfs`` (each must match its diff_id),
    put that in the image's place, remember it, and remove the workspace."""
    image = f"{pulled.repository}@{pulled.manifest_digest}"
    root = workspace / "rootfs"
    try:
        root.mkdir()
        for path, layer, diff_id in zip(files, layers, diff_ids, strict=True):
            try:
                with path.open("rb") as stream:
                    compressed = layer.media_type == LAYER_MEDIA_TYPE
                    got = extract_layer(stream, root, compressed=compressed)
            except (UnsafeLayerError, tarfile.TarError, OSError, EOFError, zlib.error) as error:
                message = f"{image}: cannot unpack layer {layer.digest}: {error}"
                raise CannotPullContainerError("unpack", message) from error
            if got != diff_id:
                message = f"{image}: layer {layer.digest} unpacks to {got}, config says {diff_id}"
                raise CannotPullContainerError("digest_mismatch", message)
        _record(pulled.root).unlink(missing_ok=True)
        _install(root, pulled.root)
        _remember(pulled)
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


def _install(rootfs: Path, destination: Path) -> None:
    """Put ``rootfs`` at ``destination`` by renames; an old tree goes after."""
    old = None
    if destination.exists():
        old = destination.with_name(f".{destination.name}.old-{uuid.uuid4().hex[:8]}")
        destination.rename(old)
    rootfs.rename(destination)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _record(destination: Path) -> Path:
    return destination.parent / ".pulled" / f"{destination.name}.json"


def _remember(image: PulledImage) -> None:
    record = asdict(image)
    record.update(root=str(image.root), config=image.config.to_oci(), cached=False)
    path = _record(image.root)
    path.parent.mkdir(exist_ok=True)
    write_atomically(path, json.dumps(record, indent=1).encode(), 0o644)


def _cached(destination: Path, digest: str) -> PulledImage | None:
    try:
        record = json.loads(_record(destination).read_text())
        if record["manifest_digest"] != digest or not destination.is_dir():
            return None
        return PulledImage(
            record["repository"],
            record["reference"],
            digest,
            record["config_digest"],
            tuple(record["layer_digests"]),
            ImageConfig.from_oci(record["config"]),
            (record["platform"][0], record["platform"][1]),
            destination,
            cached=True,
        )
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
