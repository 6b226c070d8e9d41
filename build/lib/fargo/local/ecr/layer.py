"""Image layers: a folder into a reproducible tar.gz, and a layer safely back into a folder.

``write_layer`` makes the same bytes from the same files, wherever and whenever
it runs: entries sorted by path, mtime 0, owner root (uid/gid 0), modes reduced
to 0644/0755 (0777 for symlinks), PAX format, gzip level 6 with mtime 0 and no
file name. It returns the layer's ``diff_id`` (sha256 of the uncompressed tar)::

    with store.writer() as blob:
        diff_id = write_layer(snapshot, blob, exclude={".complete"})
        layer = blob.commit(LAYER_MEDIA_TYPE)

``extract_layer`` unpacks into a folder with Python's ``data`` filter (PEP 706:
no links out of the folder, no devices, no setuid bits, no ownership changes)
and refuses outright what a well-formed image never holds: absolute paths,
``..`` components, and whiteouts (one-layer images need none)::

    with open(blob_path, "rb") as layer:
        diff_id = extract_layer(layer, rootfs, compressed=True)
"""

from __future__ import annotations

import gzip
import hashlib
import os
import posixpath
import stat
import tarfile
from collections.abc import Collection
from pathlib import Path
from typing import BinaryIO, Protocol

GZIP_LEVEL = 6
CHUNK = 1 << 16
HAVE_DATA_FILTER = hasattr(tarfile, "data_filter")  # PEP 706: Python 3.11.4 and later


class UnsafeLayerError(ValueError):
    """A layer holds an entry that would land outside its folder, or that we refuse."""


class _Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...

    def flush(self) -> object: ...


class _HashingWriter:
    """Passes writes on, hashing them: the uncompressed tar's digest on the way to gzip."""

    def __init__(self, target: _Writable) -> None:
        self._target = target
        self.sha = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        return self._target.write(data)

    def flush(self) -> None:
        self._target.flush()


class _HashingReader:
    def __init__(self, source: BinaryIO | gzip.GzipFile) -> None:
        self._source = source
        self.sha = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self.sha.update(data)
        return data


def write_layer(source: Path, out: _Writable, *, exclude: Collection[str] = ()) -> str:
    """Write ``source``'s tree as a reproducible tar.gz to ``out``; the tar's sha256 digest.

    ``exclude`` names top-level entries to leave out (e.g. a registry's marker file).
    """
    with gzip.GzipFile(
        filename="", mode="wb", compresslevel=GZIP_LEVEL, fileobj=out, mtime=0
    ) as gz:
        tar_stream = _HashingWriter(gz)
        with tarfile.open(fileobj=tar_stream, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
            for path in sorted(source.rglob("*"), key=lambda p: p.relative_to(source).as_posix()):
                relative = path.relative_to(source)
                if relative.parts[0] in exclude:
                    continue
                info = _entry(path, relative.as_posix())
                if info.isreg():
                    with path.open("rb") as content:
                        tar.addfile(info, content)
                else:
                    tar.addfile(info)
    return "sha256:" + tar_stream.sha.hexdigest()


def _entry(path: Path, name: str) -> tarfile.TarInfo:
    status = path.lstat()
    info = tarfile.TarInfo(name)
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "root", "root"
    if stat.S_ISLNK(status.st_mode):
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, str(path.readlink()), 0o777
    elif stat.S_ISDIR(status.st_mode):
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    elif stat.S_ISREG(status.st_mode):
        info.size = status.st_size
        info.mode = 0o755 if status.st_mode & 0o111 else 0o644
    else:
        raise UnsafeLayerError(f"{name}: only files, folders and symlinks go into a layer")
    return info


def extract_layer(layer: BinaryIO, destination: Path, *, compressed: bool = True) -> str:
    """Unpack a layer stream into ``destination``; the sha256 digest of its uncompressed tar.

    Raises ``UnsafeLayerError`` for an entry that could escape ``destination``,
    a device or fifo, or a whiteout; ``tarfile.TarError``/``OSError`` if it is broken.
    """
    reader = _HashingReader(gzip.GzipFile(fileobj=layer, mode="rb") if compressed else layer)
    try:
        with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
            if HAVE_DATA_FILTER:
                tar.extractall(destination, filter=_refuse_unsafe)  # noqa: S202 (filtered)
            else:
                for member in tar:
                    tar.extract(_checked(member, destination), destination)
    except (getattr(tarfile, "FilterError", UnsafeLayerError), UnsafeLayerError) as error:
        raise UnsafeLayerError(str(error)) from error
    while reader.read(CHUNK):  # the tar's end padding counts for the digest too
        pass
    return "sha256:" + reader.sha.hexdigest()


def _refuse_unsafe(member: tarfile.TarInfo, destination: str) -> tarfile.TarInfo | None:
    _refuse_unsafe_names(member)
    return tarfile.data_filter(member, destination)


def _refuse_unsafe_names(member: tarfile.TarInfo) -> None:
    name = member.name
    parts = name.split("/")
    if name.startswith("/") or ".." in parts:
        raise UnsafeLayerError(f"{name!r}: absolute or upward path in layer")
    if parts[-1].startswith(".wh."):
        raise UnsafeLayerError(f"{name!r}: whiteouts are not supported")
    if member.issym() and (
        member.linkname.startswith("/")
        or posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname)).split("/")[
            0
        ]
        == ".."
    ):
        raise UnsafeLayerError(f"{name!r}: symlink to {member.linkname!r} leaves the layer")


def _checked(member: tarfile.TarInfo, destination: Path) -> tarfile.TarInfo:
    """What the ``data`` filter refuses, for Pythons before it (3.11.0–3.11.3, as
    Debian 12's): escaping paths and links, devices and fifos; modes made plain."""
    _refuse_unsafe_names(member)
    if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
        raise UnsafeLayerError(f"{member.name!r}: only files, folders and links are unpacked")
    root = os.path.realpath(destination)
    target = os.path.realpath(os.path.join(root, member.name))
    linked = os.path.realpath(os.path.join(root, member.linkname)) if member.islnk() else root
    for path in (target, linked):
        if path != root and not path.startswith(root + os.sep):
            raise UnsafeLayerError(f"{member.name!r}: leaves the layer's folder")
    member.mode &= 0o755
    member.uid = member.gid = 0
    member.uname = member.gname = ""
    return member
