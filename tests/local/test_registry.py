"""The local registry: images built from their Dockerfiles, digests, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from fargo.local.ecr.registry import (
    LocalRegistry,
    RegistryError,
    RepositoryNotFoundException,
)
from fargo.spec.model import Image


@pytest.fixture
def context(tmp_path: Path) -> Path:
    root = tmp_path / "project" / "app"
    (root / "pkg" / "__pycache__").mkdir(parents=True)
    (root / "secrets").mkdir()
    (root / "Dockerfile").write_text(
        'FROM scratch\nWORKDIR /app\nCOPY . .\nCMD ["python", "-m", "pkg"]\n'
    )
    (root / "pkg" / "__main__.py").write_text("print('hi')\n")
    (root / "pkg" / "__pycache__" / "__main__.cpython-312.pyc").write_bytes(b"\0")
    (root / "pkg" / "notes.log").write_text("x")
    (root / "secrets" / "key.pem").write_text("secret")
    (root / ".dockerignore").write_text("# build junk\n**/__pycache__\n**/*.log\nsecrets/\n")
    return root


@pytest.fixture
def registry(tmp_path: Path) -> LocalRegistry:
    return LocalRegistry(tmp_path / "registry", tmp_path / "project")


IMAGE = Image(context="app", dockerfile="Dockerfile")


def files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_push_lays_out_what_copy_takes_without_what_dockerignore_excludes(
    registry: LocalRegistry, context: Path
) -> None:
    image = registry.push("app", IMAGE)
    assert files(image.root) == {"app/Dockerfile", "app/.dockerignore", "app/pkg/__main__.py"}
    assert image.command == ("python", "-m", "pkg")
    assert image.uri == f"local/app@sha256:{image.digest}"
    assert registry.pull("app") == image


def test_the_digest_is_stable_and_follows_the_content(
    registry: LocalRegistry, context: Path
) -> None:
    first = registry.push("app", IMAGE)
    (context / "pkg" / "notes.log").write_text("ignored files do not count")
    assert registry.push("app", IMAGE) == first
    (context / "pkg" / "__main__.py").write_text("print('changed')\n")
    changed = registry.push("app", IMAGE)
    assert changed.digest != first.digest and changed.root != first.root
    assert (first.root / "app/pkg/__main__.py").read_text() == "print('hi')\n"  # unchanged


def test_pull_of_an_unknown_repository_raises(registry: LocalRegistry) -> None:
    with pytest.raises(RepositoryNotFoundException, match="'nothing'"):
        registry.pull("nothing")


def test_a_missing_dockerfile_is_named(registry: LocalRegistry, context: Path) -> None:
    with pytest.raises(RegistryError, match=r"no Dockerfile at .*Missing\.Dockerfile"):
        registry.push("app", Image(context="app", dockerfile="Missing.Dockerfile"))


def test_an_image_with_nothing_to_run_is_an_error(registry: LocalRegistry, context: Path) -> None:
    (context / "Dockerfile").write_text("FROM scratch\nRUN true\n")
    with pytest.raises(RegistryError, match="no CMD or ENTRYPOINT"):
        registry.push("app", IMAGE)


def test_a_dockerfile_docker_refuses_is_named_with_its_line(
    registry: LocalRegistry, context: Path
) -> None:
    (context / "Dockerfile").write_text('FROM scratch\nENTRYPOINT ["python", 3]\n')
    with pytest.raises(RegistryError, match=r"image 'app': .*Dockerfile:2: ENTRYPOINT"):
        registry.push("app", IMAGE)
