"""A plain ``pip install`` of fargo (no extras) in a fresh virtualenv: the spec and the
twin work, and the cloud commands print the one-line install hint, not a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fargo.local.images.python import uv_binary

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow  # a virtualenv and a pip install


@pytest.fixture(scope="module")
def plain_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("plain") / "venv"
    # Not editable, no extras: what `pip install fargo` gives a user (installed by uv, the
    # same resolution from the same index, in seconds from its cache).
    uv = str(uv_binary())
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return venv


def run(venv: Path, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "fargo"), *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "modules",
    [
        ("aws_cdk", "cdk_nag", "checkov"),  # the cloud extra
        # the bundled services' own: each image installs them in its environment
        ("uvicorn", "uvloop", "httptools", "opentelemetry"),
    ],
)
def test_neither_the_cloud_extra_nor_the_services_dependencies_come_with_a_plain_install(
    plain_venv: Path, modules: tuple[str, ...]
) -> None:
    python = str(plain_venv / "bin" / "python")
    probe = f"import importlib.util as u; print([m for m in {modules!r} if u.find_spec(m)])"
    found = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[]"


@pytest.mark.parametrize("command", [["synth"], ["deploy", "--dry-run"], ["destroy"]])
def test_cloud_commands_name_the_extra_to_install(
    plain_venv: Path, tmp_path: Path, command: list[str]
) -> None:
    result = run(plain_venv, *command, "-f", str(ROOT / "fargo.yaml"), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert f"fargo {command[0]} needs the cloud extra" in result.stderr
    assert "pip install 'fargo[cloud]'" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing synthesized, nothing written


def test_the_spec_commands_work_without_the_extra(plain_venv: Path, tmp_path: Path) -> None:
    result = run(plain_venv, "validate", "-f", str(ROOT / "fargo.yaml"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout
