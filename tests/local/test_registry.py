"""The local registry: snapshots of build contexts, digests, Dockerfile commands, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from fargo.local.ecr.registry import (
    LocalRegistry,
    RegistryError,
    RepositoryNotFoundException,
    dockerfile_command,
)
from fargo.spec.model import Image


@pytest.fixture
def context(tmp_path: Path) -> Path:
    root = tmp_path / "project" / "app"
    (root / "pkg" / "__pycache__").mkdir(parents=True)
    (root / "secrets").mkdir()
    (root / "Dockerfile").write_text('FROM python:3.12-slim\nCMD ["python", "-m", "pkg"]\n')
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


def test_push_snapshots_the_context_without_what_dockerignore_excludes(
    registry: LocalRegistry, context: Path
) -> None:
    image = registry.push("app", IMAGE)
    assert files(image.root) == {"Dockerfile", ".dockerignore", "pkg/__main__.py", ".complete"}
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
    assert (first.root / "pkg" / "__main__.py").read_text() == "print('hi')\n"  # unchanged


def test_pull_of_an_unknown_repository_raises(registry: LocalRegistry) -> None:
    with pytest.raises(RepositoryNotFoundException, match="'nothing'"):
        registry.pull("nothing")


def test_a_missing_dockerfile_is_named(registry: LocalRegistry, context: Path) -> None:
    with pytest.raises(RegistryError, match=r"no Dockerfile at .*Missing\.Dockerfile"):
        registry.push("app", Image(context="app", dockerfile="Missing.Dockerfile"))


@pytest.mark.parametrize(
    ("dockerfile", "command"),
    [
        ('FROM x\nCMD ["python", "app.py"]\n', ["python", "app.py"]),
        ('FROM x\nENTRYPOINT ["uvicorn"]\nCMD ["app:main", "--port", "80"]\n',
         ["uvicorn", "app:main", "--port", "80"]),
        ('FROM x\nENTRYPOINT ["python", "-m", "app"]\n', ["python", "-m", "app"]),
        ('FROM x\nCMD ["a"]\nCMD ["b"]\n', ["b"]),
        ('FROM builder\nCMD ["build"]\nFROM runtime\ncmd ["run"]\n', ["run"]),
        ('FROM x\n# comment\nCMD ["python", \\\n     "app.py"]\n', ["python", "app.py"]),
    ],
)  # fmt: skip
def test_the_command_is_entrypoint_then_cmd_of_the_last_stage(
    tmp_path: Path, dockerfile: str, command: list[str]
) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text(dockerfile)
    assert dockerfile_command(path) == command


@pytest.mark.parametrize(
    ("dockerfile", "message"),
    [
        ("FROM x\nCMD python app.py\n", r'CMD must be in exec form, e\.g\. CMD \["python"'),
        (
            'FROM x\nENTRYPOINT ["python", 3]\n',
            "2: ENTRYPOINT: a JSON array must hold strings only",
        ),
        ("FROM x\nRUN true\n", "no CMD or ENTRYPOINT"),
    ],
)
def test_commands_the_twin_cannot_run_are_errors(
    tmp_path: Path, dockerfile: str, message: str
) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text(dockerfile)
    with pytest.raises(RegistryError, match=message):
        dockerfile_command(path)
