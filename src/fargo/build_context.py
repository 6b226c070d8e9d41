"""An image's build context, as Docker sees it: both worlds build images from it.

    files = context_files(context, dockerfile)  # what Docker sends (minus .dockerignore)
    sources = context_sources(parse_file(dockerfile))   # what the build reads of it
    image_tag(context, dockerfile, platform="linux/arm64")  # "3f9a…" (16 hex digits)

`image_tag` is a digest of the platform, the Dockerfile and the context files the build
reads: the sources of ``COPY``/``ADD`` (not ``--from`` another stage or image, less their
``--exclude`` patterns) and of ``RUN --mount=type=bind``, in every stage the last one
needs (BuildKit builds no other). Images sharing one context (the demo's ``services/``)
get a new tag only when their own inputs change: a commit that changes one service
redeploys that service only. Where the sources cannot be known without building (a
variable the base image or a build argument sets), every file of the context counts.

The ignore file is ``<Dockerfile>.dockerignore`` beside the Dockerfile when there is one,
else ``.dockerignore`` at the context root, as BuildKit chooses (`fargo.dockerignore`
has the pattern rules).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from fargo.dockerfile import Dockerfile, UnresolvedVariable, parse_file
from fargo.dockerignore import Pattern, PatternMatcher, clean

TAG_DIGITS = 16
# ADD fetches these itself: they are not in the context.
REMOTE_SOURCE = re.compile(r"^([a-z][a-z0-9+.-]*://|git@)", re.IGNORECASE)
CHUNK = 1 << 20


@dataclass(frozen=True)
class Source:
    """A context path (or glob) an instruction reads, ``.`` for all; ``excludes``: its
    ``--exclude`` patterns, relative to what the source names."""

    pattern: str
    excludes: tuple[str, ...] = ()
    line: int = 0

    def takes(self, relative: str) -> bool:
        """Whether this source copies the context file or directory ``relative``."""
        if self.pattern == ".":
            root, rest = "", relative
        else:
            pattern = Pattern.compile(self.pattern)
            parts = relative.split("/")
            for depth in range(1, len(parts) + 1):
                if pattern.match("/".join(parts[:depth])):
                    root, rest = "/".join(parts[:depth]), "/".join(parts[depth:])
                    break
            else:
                return False
        if not self.excludes:
            return True
        # A named file is matched by its name; a directory's files relative to it.
        inside = rest or root.rsplit("/", 1)[-1]
        return not PatternMatcher(list(self.excludes)).matches(inside)


def ignore_file(context: Path, dockerfile: Path | None) -> Path:
    """``<Dockerfile>.dockerignore`` beside the Dockerfile if it exists, else the
    context's ``.dockerignore``."""
    if dockerfile is not None:
        specific = dockerfile.with_name(dockerfile.name + ".dockerignore")
        if specific.is_file():
            return specific
    return context / ".dockerignore"


def context_entries(context: Path, dockerfile: Path | None = None) -> list[Path]:
    """Every file, symbolic link and directory Docker would send, relative, sorted."""
    matcher = PatternMatcher.read(ignore_file(context, dockerfile))
    entries: list[Path] = []
    for top, directories, files in os.walk(context, followlinks=False):
        base = Path(top).relative_to(context)
        # A directory whose own path is excluded is still walked: a later "!pattern"
        # may bring back files under it.
        for name in [*directories, *files]:
            relative = base / name
            if not matcher.matches(relative.as_posix()):
                entries.append(relative)
    return sorted(entries)


def context_files(context: Path, dockerfile: Path | None = None) -> list[Path]:
    """Every file (and symbolic link) of the context Docker would send, relative, sorted."""
    entries = context_entries(context, dockerfile)
    return [e for e in entries if (context / e).is_symlink() or not (context / e).is_dir()]


def context_sources(dockerfile: Dockerfile) -> list[Source] | None:
    """What the stages the build needs read from the context; None when a source names a
    variable whose value only the build knows."""
    sources: list[Source] = []
    try:
        for stage in dockerfile.reachable():
            for instruction in stage.instructions:
                if instruction.keyword in {"COPY", "ADD"} and instruction.flag("from") is None:
                    excludes = tuple(map(instruction.expand, instruction.flag_values("exclude")))
                    for raw in instruction.arguments[:-1]:  # the last is the destination
                        if instruction.heredocs and raw.startswith("<<"):
                            continue  # a heredoc: its content is in the Dockerfile itself
                        value = instruction.expand(raw)
                        if not REMOTE_SOURCE.match(value):
                            sources.append(Source(clean(value), excludes, instruction.line))
                elif instruction.keyword == "RUN":
                    for mount in instruction.mounts():
                        # A cache, a secret or a mount from a stage or image: no context file.
                        if mount.type == "bind" and mount.from_ is None:
                            source = clean(mount.source or ".")
                            sources.append(Source(source, (), instruction.line))
    except UnresolvedVariable:
        return None
    return sources


def image_tag(context: Path, dockerfile: Path, *, platform: str = "") -> str:
    """The tag of the image ``dockerfile`` builds from ``context`` for ``platform`` (e.g.
    ``linux/arm64``): a digest of its inputs. Raises `fargo.dockerfile.DockerfileError`
    for a Dockerfile Docker would refuse."""
    text = dockerfile.read_bytes()
    parsed = parse_file(dockerfile, platform=platform or None)
    sha = hashlib.sha256()
    _frame(sha, b"platform", platform.encode())
    _frame(sha, b"dockerfile", text)
    sources = context_sources(parsed)
    for relative in context_entries(context, dockerfile):
        name = relative.as_posix()
        if sources is None or any(source.takes(name) for source in sources):
            _entry(sha, context / relative, name)
    return sha.hexdigest()[:TAG_DIGITS]


def _frame(sha: hashlib._Hash, kind: bytes, value: bytes) -> None:
    # Length-prefixed: no two different inputs give the same byte stream.
    sha.update(kind + b"\0" + len(value).to_bytes(8, "big") + value)


def _entry(sha: hashlib._Hash, path: Path, name: str) -> None:
    """A path's name, type, executable bit and content (a link's target, not what it
    points to: Docker sends links as links)."""
    info = path.lstat()
    _frame(sha, b"path", name.encode())
    if stat.S_ISLNK(info.st_mode):
        _frame(sha, b"link", os.readlink(path).encode())
    elif stat.S_ISDIR(info.st_mode):
        _frame(sha, b"dir", b"")
    else:
        executable = b"x" if info.st_mode & stat.S_IXUSR else b"-"
        _frame(sha, b"file", executable + info.st_size.to_bytes(8, "big"))
        with path.open("rb") as stream:
            while chunk := stream.read(CHUNK):
                sha.update(chunk)
