"""An image's build context, as Docker sees it: both worlds build images from it.

    files = context_files(context)              # what Docker sends (minus .dockerignore)
    instructions(dockerfile_text)               # one string per instruction
    image_tag(context, dockerfile)              # "3f9a…" (16 hex digits)

`image_tag` is a digest of the Dockerfile and of the files its ``COPY``/``ADD``
instructions take from the context, so images sharing one context (the demo's
``services/``) get a new tag only when their own inputs change: a commit that changes
one service redeploys that service only. Where the sources cannot be known without
building (a variable in a source path), every file of the context counts.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from pathlib import Path, PurePosixPath

TAG_DIGITS = 16


def instructions(text: str) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    lines: list[str] = []
    current = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1].rstrip() + " "
            continue
        lines.append(current + stripped)
        current = ""
    if current:
        lines.append(current.rstrip())
    return lines


def context_files(context: Path) -> list[Path]:
    """Every file of the context Docker would send, relative, sorted; ``.dockerignore``
    patterns (``**/`` prefixes, directories, globs) leave files out."""
    ignore_file = context / ".dockerignore"
    patterns = []
    if ignore_file.is_file():
        patterns = [
            line.strip().rstrip("/")
            for line in ignore_file.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")
        ]
    files = []
    for path in sorted(context.rglob("*")):
        relative = path.relative_to(context)
        if path.is_file() and not _ignored(relative, patterns):
            files.append(relative)
    return files


def copied_sources(dockerfile_text: str) -> list[str] | None:
    """The context paths ``COPY``/``ADD`` take (not ``--from`` another stage or image);
    None when a source names a variable, so only a build could tell."""
    sources: list[str] = []
    for instruction in instructions(dockerfile_text):
        keyword, _, rest = instruction.partition(" ")
        if keyword.upper() not in {"COPY", "ADD"}:
            continue
        arguments = _arguments(rest.strip())
        flags = [a for a in arguments if a.startswith("--")]
        if any(f.startswith("--from") for f in flags):
            continue
        paths = [a for a in arguments if not a.startswith("--")][:-1]  # the last is the target
        for source in paths:
            if "$" in source:
                return None
            if "://" not in source:  # ADD's URLs are fetched by the build, not sent
                sources.append(source)
    return sources


def image_tag(context: Path, dockerfile: Path, *, platform: str = "") -> str:
    """The tag of the image ``dockerfile`` builds from ``context`` for ``platform`` (e.g.
    ``linux/arm64``): a digest of its inputs."""
    text = dockerfile.read_text(encoding="utf-8")
    sha = hashlib.sha256(b"platform\0" + platform.encode() + b"\0dockerfile\0" + text.encode())
    sources = copied_sources(text)
    for relative in context_files(context):
        if sources is None or _copied(relative, sources):
            sha.update(relative.as_posix().encode() + b"\0")
            sha.update((context / relative).read_bytes())
    return sha.hexdigest()[:TAG_DIGITS]


def _arguments(rest: str) -> list[str]:
    if rest.startswith("["):
        try:
            value = json.loads(rest)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return rest.split()


def _copied(relative: Path, sources: list[str]) -> bool:
    parts = PurePosixPath(relative.as_posix()).parts
    for source in sources:
        pattern = source.strip("/").removeprefix("./")
        if pattern in {"", "."}:
            return True
        prefixes = ("/".join(parts[: i + 1]) for i in range(len(parts)))
        if any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes):
            return True
    return False


def _ignored(relative: Path, patterns: list[str]) -> bool:
    text = relative.as_posix()
    parts = relative.parts
    for pattern in patterns:
        bare = pattern.removeprefix("**/")
        if fnmatch.fnmatch(text, pattern) or any(fnmatch.fnmatch(p, bare) for p in parts):
            return True
        if any(fnmatch.fnmatch("/".join(parts[: i + 1]), pattern) for i in range(len(parts))):
            return True
    return False
