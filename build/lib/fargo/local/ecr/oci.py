"""The OCI image format as the twin's ECR speaks it: media types, names, digests, documents.

The facts of the OCI image and distribution specs that the image builder
(``build``), the registry server (``distribution``) and the pull client
(``pull``) share. Documents are canonical JSON (sorted keys, no spaces), so the
same image always has the same manifest digest::

    config = ImageConfig.of(cmd=["python", "-m", "app"], env={"PYTHONUNBUFFERED": "1"},
                            working_dir="/app", user="10001:10001", exposed_ports=[8080])
    body = config_document(config, diff_ids=["sha256:…"])
    manifest = manifest_document(Descriptor(CONFIG_MEDIA_TYPE, sha256_digest(body), len(body)),
                                 [layer_descriptor])
    config_descriptor, layers = parse_manifest(manifest)
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYER_TAR_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"
LAYER_MEDIA_TYPES = frozenset({LAYER_MEDIA_TYPE, LAYER_TAR_MEDIA_TYPE})

# The distribution spec's grammar for repository names and tags; only sha256 digests.
REPOSITORY_NAME = re.compile(
    r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*"
)
TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
DIGEST = re.compile(r"sha256:[a-f0-9]{64}")

# Go's GOARCH names, which image configs use.
_ARCHITECTURES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def canonical_json(value: object) -> bytes:
    """``value`` as compact JSON with sorted keys: equal values, equal bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def is_digest(reference: str) -> bool:
    return DIGEST.fullmatch(reference) is not None


def is_tag(reference: str) -> bool:
    return TAG.fullmatch(reference) is not None


def is_repository_name(name: str) -> bool:
    return len(name) <= 255 and REPOSITORY_NAME.fullmatch(name) is not None


def host_platform() -> tuple[str, str]:
    """This machine's ``(architecture, os)`` as image configs name them."""
    machine = platform.machine().lower()
    return _ARCHITECTURES.get(machine, machine), platform.system().lower()


@dataclass(frozen=True)
class Descriptor:
    """A reference to content: what it is, its digest, its size in bytes."""

    media_type: str
    digest: str
    size: int

    def to_oci(self) -> dict[str, object]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}

    @classmethod
    def from_oci(cls, value: object) -> Descriptor:
        if not isinstance(value, dict):
            raise ValueError("a descriptor must be an object")
        media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
        if not isinstance(media_type, str) or not isinstance(digest, str) or not is_digest(digest):
            raise ValueError(f"bad descriptor {value!r}")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError(f"bad descriptor size in {value!r}")
        return cls(media_type, digest, size)


@dataclass(frozen=True)
class ImageConfig:
    """What a container runs: the ``config`` object of an OCI image config."""

    cmd: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    env: tuple[str, ...] = ()  # "NAME=value", in order
    working_dir: str = ""
    user: str = ""
    exposed_ports: tuple[str, ...] = ()  # "8080/tcp"

    @classmethod
    def of(
        cls,
        *,
        cmd: Sequence[str] = (),
        entrypoint: Sequence[str] = (),
        env: Mapping[str, str] | Sequence[str] = (),
        working_dir: str = "",
        user: str = "",
        exposed_ports: Iterable[int | str] = (),
    ) -> ImageConfig:
        """Build from loose values: ``env`` as a mapping, ports as numbers."""
        pairs = [f"{k}={v}" for k, v in env.items()] if isinstance(env, Mapping) else list(env)
        ports = sorted({p if "/" in str(p) else f"{p}/tcp" for p in map(str, exposed_ports)})
        return cls(tuple(cmd), tuple(entrypoint), tuple(pairs), working_dir, user, tuple(ports))

    @property
    def environment(self) -> dict[str, str]:
        return dict(item.partition("=")[::2] for item in self.env)

    @property
    def argv(self) -> tuple[str, ...]:
        """What the container runs: ``Entrypoint`` followed by ``Cmd``."""
        return (*self.entrypoint, *self.cmd)

    def to_oci(self) -> dict[str, object]:
        fields: dict[str, object] = {
            "Cmd": list(self.cmd),
            "Entrypoint": list(self.entrypoint),
            "Env": list(self.env),
            "WorkingDir": self.working_dir,
            "User": self.user,
            "ExposedPorts": {port: {} for port in self.exposed_ports},
        }
        return {key: value for key, value in fields.items() if value}

    @classmethod
    def from_oci(cls, value: object) -> ImageConfig:
        if value is None:
            return cls()
        if not isinstance(value, dict):
            raise ValueError("the image config's config must be an object")

        def strings(key: str) -> tuple[str, ...]:
            items = value.get(key) or []
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise ValueError(f"config.{key} must be a list of strings")
            return tuple(items)

        working_dir, user = value.get("WorkingDir") or "", value.get("User") or ""
        ports = value.get("ExposedPorts") or {}
        if not isinstance(working_dir, str) or not isinstance(user, str):
            raise ValueError("config.WorkingDir and config.User must be strings")
        if not isinstance(ports, dict):
            raise ValueError("config.ExposedPorts must be an object")
        env = strings("Env")
        return cls(
            strings("Cmd"), strings("Entrypoint"), env, working_dir, user, tuple(sorted(ports))
        )


def config_document(
    config: ImageConfig, diff_ids: Sequence[str], platform: tuple[str, str] | None = None
) -> bytes:
    """An image config blob: platform, run settings, and the layers' uncompressed digests."""
    architecture, os_name = platform or host_platform()
    return canonical_json(
        {
            "architecture": architecture,
            "os": os_name,
            "config": config.to_oci(),
            "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        }
    )


def parse_config(body: bytes) -> tuple[ImageConfig, tuple[str, ...], tuple[str, str]]:
    """``(config, diff_ids, (architecture, os))`` of an image config blob."""
    document: Any = json.loads(body)
    if not isinstance(document, dict):
        raise ValueError("an image config must be a JSON object")
    rootfs = document.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
        raise ValueError("the image config has no rootfs.diff_ids")
    architecture, os_name = document.get("architecture"), document.get("os")
    if not isinstance(architecture, str) or not isinstance(os_name, str):
        raise ValueError("the image config must name its architecture and os")
    return ImageConfig.from_oci(document.get("config")), tuple(diff_ids), (architecture, os_name)


def manifest_document(config: Descriptor, layers: Sequence[Descriptor]) -> bytes:
    """An OCI image manifest for a config and its layers (base layer first)."""
    return canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": config.to_oci(),
            "layers": [layer.to_oci() for layer in layers],
        }
    )


def parse_manifest(body: bytes) -> tuple[Descriptor, tuple[Descriptor, ...]]:
    """The config and layer descriptors of an OCI image manifest; ``ValueError`` if not one."""
    document: Any = json.loads(body)
    if not isinstance(document, dict) or document.get("schemaVersion") != 2:
        raise ValueError("not an image manifest with schemaVersion 2")
    if document.get("mediaType", MANIFEST_MEDIA_TYPE) != MANIFEST_MEDIA_TYPE:
        raise ValueError(f"unsupported manifest media type {document.get('mediaType')!r}")
    config = Descriptor.from_oci(document.get("config"))
    if config.media_type != CONFIG_MEDIA_TYPE:
        raise ValueError(f"unsupported config media type {config.media_type!r}")
    layers = document.get("layers")
    if not isinstance(layers, list):
        raise ValueError("the manifest has no layers list")
    descriptors = tuple(Descriptor.from_oci(layer) for layer in layers)
    for layer in descriptors:
        if layer.media_type not in LAYER_MEDIA_TYPES:
            raise ValueError(f"unsupported layer media type {layer.media_type!r}")
    return config, descriptors
