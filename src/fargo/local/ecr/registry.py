"""ECR's local counterpart: pushing images built from their Dockerfiles.

``push`` builds an image (`fargo.local.images.builder`: its Dockerfile read, each stage's
files laid out from the build context, its own Python environment made by uv), and
stores its files as an OCI image in the registry's blob store, tagged with the first 16
hex digits of its digest, where the registry endpoint (`fargo.local.ecr.distribution`)
serves it. A task pulls its image through its own ENI while it is PROVISIONING
(`fargo.local.ecr.puller`) and runs from what it pulled, so editing the sources does not
change a running task — as with a real image. The image's Python environment is not in
the layer: it stays in this machine's cache of environments (a venv names its
interpreter by path; `fargo.local.images.cache`), shared by the images with the same
requirements.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fargo.local.ecr.blobs import BlobStore
from fargo.local.ecr.build import build_image
from fargo.local.ecr.oci import ImageConfig
from fargo.local.images.builder import BuildFailed, ImageBuilder, ProcessImage
from fargo.spec import Image


class RegistryError(Exception):
    """An image cannot be pushed or pulled."""


class RepositoryNotFoundException(RegistryError):
    """No image was pushed to this repository."""


@dataclass(frozen=True)
class ImageManifest:
    """A pushed image (``root``: its built files) or a pulled one (``root``: what a task
    runs); ``process``: how it runs (None: ``command`` with this machine's programs)."""

    repository: str
    digest: str  # of what its build read
    command: tuple[str, ...]
    root: Path
    manifest_digest: str = ""  # the OCI manifest's, as the registry serves it
    process: ProcessImage | None = field(default=None, compare=False)
    notes: tuple[str, ...] = field(default=(), compare=False)
    cached: bool = field(default=False, compare=False)
    build_seconds: float = field(default=0.0, compare=False)

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
        self.builder = ImageBuilder(directory)  # environments: this machine's cache
        self._latest: dict[str, ImageManifest] = {}

    def push(self, repository: str, image: Image) -> ImageManifest:
        """Build ``image`` and store it; pushing unchanged sources again is a no-op (a few
        file reads). Raises `RegistryError` naming the image, the Dockerfile line and the
        cause when the build fails."""
        context = (self.project_root / image.context).resolve()
        dockerfile = context / image.dockerfile
        try:
            built = self.builder.build(repository, context, dockerfile)
        except BuildFailed as err:
            raise RegistryError(str(err)) from None
        run = built.process.run
        if not run.argv:
            raise RegistryError(
                f"image {repository!r}: {dockerfile}: no CMD or ENTRYPOINT; the task has "
                "nothing to run"
            )
        config = ImageConfig.of(
            cmd=run.cmd,
            entrypoint=run.entrypoint,
            env=dict(run.env),
            working_dir=run.working_dir,
            user=run.user,
            exposed_ports=run.exposed_ports,
        )
        stored = build_image(
            self.store, repository, built.root, config, tags=[built.digest[:16]],
            snapshot_digest=built.digest,
        )  # fmt: skip
        manifest = ImageManifest(
            repository,
            built.digest,
            run.argv,
            built.root,
            stored.manifest_digest,
            process=built.process,
            notes=built.notes,
            cached=built.cached,
            build_seconds=built.seconds,
        )
        self._latest[repository] = manifest
        return manifest

    def pull(self, repository: str) -> ImageManifest:
        try:
            manifest = self._latest[repository]
        except KeyError:
            raise RepositoryNotFoundException(
                f"no image pushed to repository {repository!r}"
            ) from None
        if not manifest.root.is_dir():
            raise RegistryError(f"image {manifest.uri} is missing from {manifest.root}")
        return manifest
