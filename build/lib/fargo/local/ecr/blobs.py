"""The registry's storage: content-addressed blobs, and repositories that link and tag them.

Layout under ``root`` (the layout of Docker's distribution registry, simplified)::

    blobs/sha256/<hex>                        every blob (layer, config, manifest) once
    repositories/<name>/_blobs/<hex>          the blobs this repository may serve
    repositories/<name>/_manifests/<hex>      the manifests it may serve
    repositories/<name>/_tags/<tag>           tag → manifest digest
    cache/<key>                               build cache: key → manifest digest
    tmp/                                      blobs being written

``_`` cannot start a component of a repository name, so ``team/app`` and its
tags never collide. Every file appears whole: blobs are written to ``tmp/`` and
renamed into place; small files go through ``write_atomically``::

    store = BlobStore(state / "ecr")
    with store.writer() as blob:
        blob.write(b"…")
        layer = blob.commit(LAYER_MEDIA_TYPE)        # a Descriptor
    store.link_blob("team/app", layer.digest)
    store.tag("team/app", "latest", manifest.digest)
    store.resolve("team/app", "latest")           # → "sha256:…" or None
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from types import TracebackType

from fargo.local.ecr.oci import Descriptor, is_digest, is_repository_name, is_tag, sha256_digest
from fargo.local.state.files import write_atomically

BLOB_MODE = 0o644


class BlobStore:
    """Blobs by digest, repositories by name; safe for one writer and many readers."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str) -> Path:
        if not is_digest(digest):
            raise ValueError(f"not a sha256 digest: {digest!r}")
        return self.root / "blobs" / "sha256" / digest.removeprefix("sha256:")

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def read(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()

    def put(self, data: bytes, media_type: str) -> Descriptor:
        """Store ``data`` (a no-op if it is there already); its descriptor."""
        descriptor = Descriptor(media_type, sha256_digest(data), len(data))
        target = self.path(descriptor.digest)
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(target, data, BLOB_MODE)
        return descriptor

    def writer(self) -> BlobWriter:
        """A file to stream a large blob into; ``commit`` files it under its digest."""
        return BlobWriter(self)

    def repository(self, name: str) -> Path:
        if not is_repository_name(name):
            raise ValueError(f"invalid repository name {name!r}")
        return self.root / "repositories" / name

    def has_repository(self, name: str) -> bool:
        return is_repository_name(name) and (self.repository(name) / "_manifests").is_dir()

    def link_blob(self, repository: str, digest: str) -> None:
        self._write_small(self._link(repository, "_blobs", digest), digest)

    def link_manifest(self, repository: str, digest: str) -> None:
        self._write_small(self._link(repository, "_manifests", digest), digest)

    def has_blob(self, repository: str, digest: str) -> bool:
        """Whether ``repository`` may serve this (config or layer) blob, and it exists."""
        return self._linked(repository, "_blobs", digest)

    def has_manifest(self, repository: str, digest: str) -> bool:
        return self._linked(repository, "_manifests", digest)

    def tag(self, repository: str, tag: str, digest: str) -> None:
        if not is_tag(tag):
            raise ValueError(f"invalid tag {tag!r}")
        if not self.has_manifest(repository, digest):
            raise ValueError(f"{repository}: no manifest {digest} to tag {tag!r}")
        self._write_small(self.repository(repository) / "_tags" / tag, digest)

    def tags(self, repository: str) -> list[str]:
        folder = self.repository(repository) / "_tags"
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []

    def resolve(self, repository: str, reference: str) -> str | None:
        """The manifest digest ``reference`` (a tag or a digest) names in ``repository``."""
        if not is_repository_name(repository):
            return None
        digest = reference
        if is_tag(reference):
            try:
                digest = (self.repository(repository) / "_tags" / reference).read_text().strip()
            except OSError:
                return None
        return digest if self.has_manifest(repository, digest) else None

    def cached(self, key: str) -> str | None:
        """The manifest digest remembered under a build-cache ``key``, if still whole."""
        try:
            digest = (self.root / "cache" / key).read_text().strip()
        except OSError:
            return None
        return digest if is_digest(digest) and self.has(digest) else None

    def remember(self, key: str, digest: str) -> None:
        self._write_small(self.root / "cache" / key, digest)

    def _link(self, repository: str, kind: str, digest: str) -> Path:
        return self.repository(repository) / kind / self.path(digest).name

    def _linked(self, repository: str, kind: str, digest: str) -> bool:
        if not is_repository_name(repository) or not is_digest(digest):
            return False
        return self._link(repository, kind, digest).is_file() and self.has(digest)

    def _write_small(self, path: Path, text: str) -> None:
        with contextlib.suppress(OSError):
            if path.read_text() == text:
                return  # unchanged: a warm build writes nothing
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, text.encode(), BLOB_MODE)


class BlobWriter:
    """A temporary file that hashes what is written; ``commit`` renames it to its digest."""

    def __init__(self, store: BlobStore) -> None:
        self._store = store
        temporary = store.root / "tmp"
        temporary.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=temporary, prefix="blob-")
        os.fchmod(fd, BLOB_MODE)
        self._file = os.fdopen(fd, "wb")
        self._temporary = Path(name)
        self._sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._sha.update(data)
        self.size += len(data)
        return self._file.write(data)

    def flush(self) -> None:
        self._file.flush()

    def commit(self, media_type: str) -> Descriptor:
        self._file.close()
        descriptor = Descriptor(media_type, "sha256:" + self._sha.hexdigest(), self.size)
        target = self._store.path(descriptor.digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._temporary, target)
        return descriptor

    def abort(self) -> None:
        self._file.close()
        self._temporary.unlink(missing_ok=True)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._file.closed or self._temporary.exists():
            self.abort()
