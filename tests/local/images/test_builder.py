"""The image builder: each stage's files laid out as COPY/ADD say, cached by digest; the
run configuration; pip's index settings passed to uv. No network: images FROM scratch
need no Python environment."""

from __future__ import annotations

import io
import sys
import tarfile
from pathlib import Path

import pytest

from fargo.local.images import builder as builder_module
from fargo.local.images import environment
from fargo.local.images.builder import BuildFailed, ImageBuilder
from fargo.local.images.environment import uv_environment


def files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir()}


@pytest.fixture
def context(tmp_path: Path) -> Path:
    root = tmp_path / "context"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "pkg" / "__init__.py").write_text("")
    (root / "src" / "pkg" / "debug.log").write_text("ignored")
    (root / "app.py").write_text("print('hi')\n")
    (root / "conf.ini").write_text("[x]\n")
    (root / ".dockerignore").write_text("**/*.log\n")
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        info = tarfile.TarInfo("inside.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"ok"))
    (root / "data.tar.gz").write_bytes(archive.getvalue())
    return root


def build(tmp_path: Path, context: Path, dockerfile: str) -> tuple[ImageBuilder, Path]:
    (context / "Dockerfile").write_text(dockerfile)
    builder = ImageBuilder(tmp_path / "registry", tmp_path / "environments")
    return builder, context / "Dockerfile"


def test_stages_are_laid_out_as_copy_and_add_say(tmp_path: Path, context: Path) -> None:
    builder, dockerfile = build(
        tmp_path,
        context,
        "FROM scratch AS build\n"
        "WORKDIR /build\n"
        "COPY src/ ./src/\n"
        "COPY *.py conf.ini ./\n"
        "FROM scratch\n"
        "WORKDIR /app\n"
        "COPY --from=build /build/src /app/src\n"
        "COPY --from=build /build/app.py .\n"
        "ADD data.tar.gz /data/\n"
        "RUN mkdir -p /var/cache/app\n"
        'CMD ["python", "app.py"]\n',
    )
    built = builder.build("web", context, dockerfile)
    assert files(built.root) == {"app/src/pkg/__init__.py", "app/app.py", "data/inside.txt"}
    assert (built.root / "var" / "cache" / "app").is_dir()
    assert built.process.run.working_dir == "/app"
    assert built.process.environment is None  # FROM scratch: no Python asked for
    assert not built.cached


def test_an_unchanged_image_is_cached_and_a_change_rebuilds(tmp_path: Path, context: Path) -> None:
    builder, dockerfile = build(tmp_path, context, 'FROM scratch\nCOPY app.py /\nCMD ["x"]\n')
    first = builder.build("web", context, dockerfile)
    again = builder.build("web", context, dockerfile)
    assert again.cached and again.digest == first.digest and again.root == first.root
    (context / "conf.ini").write_text("not read by the build")
    assert builder.build("web", context, dockerfile).cached
    (context / "app.py").write_text("print('changed')\n")
    changed = builder.build("web", context, dockerfile)
    assert not changed.cached and changed.digest != first.digest
    assert (first.root / "app.py").read_text() == "print('hi')\n"  # the old image is intact


def test_a_missing_source_names_the_image_and_the_line(tmp_path: Path, context: Path) -> None:
    builder, dockerfile = build(
        tmp_path, context, 'FROM scratch\nCOPY app.py /\nCOPY missing.txt /\nCMD ["x"]\n'
    )
    with pytest.raises(BuildFailed, match=r"image 'web': .*Dockerfile:3: missing.txt: not found"):
        builder.build("web", context, dockerfile)


def test_pip_index_settings_become_uv_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "pip.conf"
    config.write_text(
        "[global]\nindex-url = https://pypi.example.test/simple\n"
        "extra-index-url = file:///opt/a\n    file:///opt/b\n"
    )
    for name in ("UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_INDEX_STRATEGY", "UV_FIND_LINKS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", str(config))
    monkeypatch.setenv("PIP_FIND_LINKS", "/opt/wheels")
    variables = uv_environment()
    assert variables["UV_INDEX_URL"] == "https://pypi.example.test/simple"
    assert variables["UV_EXTRA_INDEX_URL"] == "file:///opt/a file:///opt/b"
    assert variables["UV_FIND_LINKS"] == "/opt/wheels"
    assert variables["UV_INDEX_STRATEGY"] == "unsafe-best-match"  # pip's choice, not uv's
    monkeypatch.setenv("UV_INDEX_URL", "https://mine.example.test/simple")
    assert "UV_INDEX_URL" not in uv_environment()  # a UV_* already set wins


def pyc_flags(pyc: Path) -> int:
    """PEP 552: 0 timestamp, 1 unchecked hash, 3 checked hash."""
    return int.from_bytes(pyc.read_bytes()[4:8], "little")


def test_compileall_makes_bytecode_checked_by_hash_before_a_later_copy(
    tmp_path: Path, context: Path
) -> None:
    builder, dockerfile = build(
        tmp_path,
        context,
        "FROM scratch AS build\n"
        "COPY src /build/src\n"
        "RUN python -m compileall -q /build/src\n"
        "FROM scratch\n"
        "COPY --from=build /build/src /app/src\n"
        "COPY app.py /app/\n"
        "RUN cd /app && python -m compileall -q --invalidation-mode unchecked-hash app.py\n"
        'CMD ["python", "/app/app.py"]\n',
    )
    built = builder.build("web", context, dockerfile)
    tag = sys.implementation.cache_tag  # FROM scratch: the interpreter fargo runs on
    package = built.root / "app/src/pkg/__pycache__" / f"__init__.{tag}.pyc"
    app = built.root / "app/__pycache__" / f"app.{tag}.pyc"
    # timestamp (the default) becomes checked-hash: the image's layers keep no times
    assert pyc_flags(package) == 3
    assert pyc_flags(app) == 1  # as the Dockerfile asks
    assert not any("compileall" in note for note in built.notes)


def test_a_file_compileall_cannot_compile_fails_the_build_at_its_line(
    tmp_path: Path, context: Path
) -> None:
    (context / "app.py").write_text("def broken(:\n")
    builder, dockerfile = build(
        tmp_path,
        context,
        'FROM scratch\nCOPY app.py /app/\nRUN python -m compileall -q /app\nCMD ["x"]\n',
    )
    with pytest.raises(BuildFailed) as raised:
        builder.build("web", context, dockerfile)
    message = str(raised.value)
    assert "image 'web'" in message and "Dockerfile:3: python -m compileall failed" in message
    assert "app.py" in message and str(tmp_path) not in message.split("failed", 1)[1]


def test_a_new_registry_copies_the_layout_another_build_made(
    tmp_path: Path, context: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh state folder (a new registry) with this machine's cache gets an unchanged
    image's files, bytecode included, from the layout kept there: nothing compiles again.
    A changed file is laid out anew."""
    dockerfile = 'FROM scratch\nCOPY app.py /app/\nRUN python -m compileall -q /app\nCMD ["x"]\n'
    builder, path = build(tmp_path, context, dockerfile)
    first = builder.build("web", context, path)
    compiled: list[str] = []
    real_compile = builder_module._compile
    monkeypatch.setattr(
        builder_module, "_compile", lambda *args: compiled.append("run") or real_compile(*args)
    )
    second = ImageBuilder(tmp_path / "registry-2", tmp_path / "environments").build(
        "web", context, path
    )
    assert not second.cached and second.root != first.root  # built, in its own registry
    assert compiled == []
    assert files(second.root) == files(first.root)
    tag = sys.implementation.cache_tag
    pyc = f"app/__pycache__/app.{tag}.pyc"
    assert (second.root / pyc).read_bytes() == (first.root / pyc).read_bytes()
    (context / "app.py").write_text("print('changed')\n")
    third = ImageBuilder(tmp_path / "registry-3", tmp_path / "environments").build(
        "web", context, path
    )
    assert compiled == ["run"]
    assert (third.root / "app/app.py").read_text() == "print('changed')\n"


def test_without_a_home_uvs_cache_is_named_by_the_machines_uid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`nobody` has no home: uv's cache goes to the temporary folder, under the uid the
    machine knows, also for a rootless VPC control plane (uid 0 in its user namespace)."""
    monkeypatch.delenv("UV_CACHE_DIR", raising=False)
    monkeypatch.setattr(Path, "home", lambda: Path("/nonexistent"))
    monkeypatch.setattr(environment, "machine_uid", lambda: 65534)
    assert uv_environment()["UV_CACHE_DIR"].endswith("/fargo-65534/uv")
