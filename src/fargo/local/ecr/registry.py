"""ECR's local counterpart: pushing images built from their build context.

``push`` copies an image's build context (minus what ``.dockerignore`` excludes)
into ``<state>/registry/<repository>/sha256-<digest>/``, records its command (the
exec-form ``CMD`` of its Dockerfile), and stores it as an OCI image in the
registry's blob store, tagged with the first 16 hex digits of the digest, where the
registry endpoint (`fargo.local.ecr.distribution`) serves it. A task pulls its image
through its own ENI while it is PROVISIONING (`fargo.local.ecr.puller`) and runs from
what it pulled, so editing the sources does not change a running task — as with a
real image.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from fargo.build_context import context_files
from fargo.dockerfile import DockerfileError, Stage, parse_file
from fargo.local.ecr.blobs import BlobStore
from fargo.local.ecr.build import build_image
from fargo.local.ecr.oci import ImageConfig
from fargo.spec import Image


class RegistryError(Exception):
    """An image cannot be pushed or pulled."""


class RepositoryNotFoundException(RegistryError):
    """No image was pushed to this repository."""


@dataclass(frozen=True)
class ImageManifest:
    """A pushed image (``root``: the snapshot) or a pulled one (``root``: what a task runs)."""

    repository: str
    digest: str  # of the build context and command
    command: tuple[str, ...]
    root: Path
    manifest_digest: str = ""  # the OCI manifest's, as the registry serves it

    @property
    def tag(self) -> str:
        return self.digest[:16]

    @property
    def uri(self) -> str:
        return f"local/{self.repository}@sha256:{self.digest}"


class LocalRegistry:
    """A directory of pushed images; one repository per spec image."""

    def __init__(self, directory: Path, project_root: Path) -> None:
        self.directory = directory
        self.project_root = project_root
        self.store = BlobStore(directory / "oci")
        self._latest: dict[str, ImageManifest] = {}

    def push(self, repository: str, image: Image) -> ImageManifest:
        """Snapshot ``image``'s context; pushing unchanged sources again is a no-op."""
        context = (self.project_root / image.context).resolve()
        dockerfile = context / image.dockerfile
        if not dockerfile.is_file():
            raise RegistryError(f"image {repository!r}: no Dockerfile at {dockerfile}")
        command = dockerfile_command(dockerfile)
        files = context_files(context, dockerfile)
        digest = _digest(context, files, command)
        root = self.directory / repository / f"sha256-{digest[:16]}"
        if not (root / ".complete").exists():
            staging = root.with_name(root.name + ".partial")
            shutil.rmtree(staging, ignore_errors=True)
            for relative in files:
                target = staging / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(context / relative, target)
            (staging / ".complete").write_text(json.dumps({"command": command}))
            shutil.rmtree(root, ignore_errors=True)
            staging.rename(root)
        config = ImageConfig.of(cmd=command)
        built = build_image(
            self.store, repository, root, config, tags=[digest[:16]], snapshot_digest=digest
        )
        manifest = ImageManifest(repository, digest, tuple(command), root, built.manifest_digest)
        self._latest[repository] = manifest
        return manifest

    def pull(self, repository: str) -> ImageManifest:
        try:
            manifest = self._latest[repository]
        except KeyError:
            raise RepositoryNotFoundException(
                f"no image pushed to repository {repository!r}"
            ) from None
        if not (manifest.root / ".complete").exists():
            raise RegistryError(f"image {manifest.uri} is missing from {manifest.root}")
        return manifest


def dockerfile_command(dockerfile: Path) -> list[str]:
    """The exec-form ``ENTRYPOINT`` and ``CMD`` of a Dockerfile's last stage (or of the
    stages it is built ``FROM``)."""
    try:
        parsed = parse_file(dockerfile)
    except DockerfileError as err:
        raise RegistryError(str(err)) from None
    entrypoint: list[str] = []
    command: list[str] | None = None
    chain = []
    stage: Stage | None = parsed.target
    while stage is not None:
        chain.append(stage)
        stage = parsed.stages[stage.base_stage] if stage.base_stage is not None else None
    for stage in reversed(chain):
        for instruction in stage.instructions:
            if instruction.keyword not in {"CMD", "ENTRYPOINT"}:
                continue
            if instruction.form != "exec":
                raise RegistryError(
                    f"{dockerfile}:{instruction.line}: {instruction.keyword} must be in exec "
                    f'form, e.g. {instruction.keyword} ["python", "-m", "app"]'
                )
            if instruction.keyword == "CMD":
                command = list(instruction.arguments)
            else:
                entrypoint = list(instruction.arguments)
    argv = [*entrypoint, *(command or [])]
    if not argv:
        raise RegistryError(f"{dockerfile}: no CMD or ENTRYPOINT; the task has nothing to run")
    return argv


def _digest(context: Path, files: list[Path], command: list[str]) -> str:
    sha = hashlib.sha256(json.dumps(command).encode())
    for relative in files:
        sha.update(relative.as_posix().encode() + b"\0")
        sha.update((context / relative).read_bytes())
    return sha.hexdigest()
