"""An image's environment is found again by its key, and made anew when what it installs
changes: its requirement and constraint files, and the files they read in turn."""

from __future__ import annotations

import hashlib
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from fargo.dockerfile import parse
from fargo.local.images.environment import Environments, InstallFailed, environment_key
from fargo.local.images.plan import BuildPlan, plan_build
from fargo.local.images.python import uv_binary

DOCKERFILE = """\
FROM python:3.11-slim
WORKDIR /app
COPY . .
RUN pip install -r requirements.txt
CMD ["python", "app.py"]
"""


def plan_of(text: str = DOCKERFILE) -> BuildPlan:
    return plan_build(parse(text, path="svc/Dockerfile"))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An image's laid-out files: /app with its requirements, which read others."""
    app = tmp_path / "root" / "app"
    (app / "requirements").mkdir(parents=True)
    (app / "requirements.txt").write_text(
        "flask==3.0.3  # the web layer\n-r requirements/base.txt\n"
    )
    (app / "requirements" / "base.txt").write_text(
        "-c constraints.txt\r\n--requirement \\\r\n  ../extra.txt\r\nitsdangerous\r\n"
    )
    (app / "requirements" / "constraints.txt").write_text("werkzeug<4\n")
    (app / "extra.txt").write_text("blinker\n")
    (app / "app.py").write_text("print('hello')\n")
    return tmp_path / "root"


def key(root: Path, digest: str = "sha256:one", plan: BuildPlan | None = None) -> str:
    return environment_key(plan or plan_of(), {0: root}, digest)


def test_an_unchanged_image_and_a_change_of_its_sources_keep_the_key(root: Path) -> None:
    first = key(root)
    assert key(root) == first
    (root / "app" / "app.py").write_text("print('changed')\n")  # the image's digest moves,
    assert key(root, "sha256:two") == first  # its dependencies do not


@pytest.mark.parametrize(
    "changed",
    [
        "app/requirements.txt",
        "app/requirements/base.txt",  # read by -r, relative to the file naming it
        "app/requirements/constraints.txt",  # read by -c from base.txt
        "app/extra.txt",  # --requirement after a line continuation (CRLF), from base.txt's folder
    ],
)
def test_a_change_of_any_file_the_install_reads_makes_a_new_key(root: Path, changed: str) -> None:
    first = key(root)
    with (root / changed).open("a") as file:
        file.write("six\n")
    assert key(root) != first


def test_a_local_package_installed_by_a_requirements_file_follows_the_image(root: Path) -> None:
    first = key(root)
    assert key(root, "sha256:two") == first
    with (root / "app" / "requirements" / "base.txt").open("a") as file:
        file.write("-e git+https://example.invalid/lib.git#egg=lib\n")  # not the image's
    assert key(root, "sha256:two") == key(root, "sha256:one") != first
    with (root / "app" / "requirements" / "base.txt").open("a") as file:
        file.write("-e ./lib\n")
    assert key(root, "sha256:two") != key(root, "sha256:one")


def test_files_that_read_each_other_end_and_an_absolute_one_is_this_machines(
    root: Path, tmp_path: Path
) -> None:
    """uv reads the files on this machine: a path in a file from the file's folder, an
    absolute one as it is (not the image's); the key reads the same files."""
    machines = tmp_path / "machine.txt"
    machines.write_text("six\n")
    (root / "app" / "extra.txt").write_text(f"-r ../app/requirements.txt\n-r {machines}\n")
    first = key(root)  # ends, though requirements.txt reads extra.txt which reads it
    machines.write_text("seven\n")
    assert key(root) != first


def test_an_environment_is_made_once_and_found_again_by_its_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real environments (uv; requirements that name no package): made for the first
    image, found at once for the same key (another digest: a source change), made anew
    when a file its requirements read changes."""
    made: list[Path] = []
    make = Environments._make

    def counting(self: Environments, folder: Path, plan: BuildPlan, roots: Any) -> None:
        made.append(folder)
        make(self, folder, plan, roots)

    monkeypatch.setattr(Environments, "_make", counting)
    environments = Environments(tmp_path / "environments", uv=uv_binary())
    root = tmp_path / "root"
    (root / "app").mkdir(parents=True)
    (root / "app" / "requirements.txt").write_text("-r base.txt\n")
    (root / "app" / "base.txt").write_text("# nothing yet\n")
    plan = plan_of()
    folder, _ = environments.ensure(plan, roots={0: root}, image_digest="sha256:one")
    assert (folder / "bin" / "python").exists() and made == [folder]
    again, _ = environments.ensure(plan, roots={0: root}, image_digest="sha256:two")
    assert again == folder and made == [folder]
    (root / "app" / "base.txt").write_text("# still nothing, but changed\n")
    other, _ = environments.ensure(plan, roots={0: root}, image_digest="sha256:two")
    assert other != folder and made == [folder, other]


def wheel(folder: Path, name: str, version: str) -> Path:
    """A minimal pure-Python wheel of ``name`` (a module printing its version)."""
    path = folder / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": f"VERSION = {version!r}\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = "".join(f"{file},,\n" for file in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as archive:
        for file, text in {**files, f"{info}/RECORD": record}.items():
            archive.writestr(file, text)
    return path


def test_a_poetry_exported_requirements_file_installs_with_its_hashes_and_markers(
    tmp_path: Path,
) -> None:
    """``poetry export`` / ``pdm export`` write pinned requirements with environment
    markers and ``--hash`` options over continued lines: installed as written, and a hash
    that does not match fails the install at the Dockerfile's line."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    digest = hashlib.sha256(wheel(wheels, "fargo_mini", "0.1").read_bytes()).hexdigest()
    root = tmp_path / "root"
    (root / "app").mkdir(parents=True)
    exported = (
        f"--no-index\n--find-links {wheels}\n\n"
        'fargo-mini==0.1 ; python_version >= "3.8" and python_version < "4.0" \\\n'
        f"    --hash=sha256:{digest}\n"
        'fargo-absent==9.9 ; python_version < "3.0" \\\n'  # a marker that excludes it
        f"    --hash=sha256:{'0' * 64}\n"
    )
    (root / "app" / "requirements.txt").write_text(exported)
    environments = Environments(tmp_path / "environments", uv=uv_binary())
    folder, _ = environments.ensure(plan_of(), roots={0: root}, image_digest="sha256:one")
    python = str(folder / "bin" / "python")
    ran = subprocess.run(
        [python, "-c", "import fargo_mini; print(fargo_mini.VERSION)"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert (ran.returncode, ran.stdout.strip()) == (0, "0.1"), ran.stderr
    (root / "app" / "requirements.txt").write_text(exported.replace(digest, "1" * 64))
    with pytest.raises(InstallFailed) as failed:
        environments.ensure(plan_of(), roots={0: root}, image_digest="sha256:one")
    assert failed.value.line == 4  # RUN pip install -r requirements.txt
    assert "hash" in str(failed.value).lower(), failed.value
