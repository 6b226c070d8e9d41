"""The Python of an image's ``FROM python:X.Y…``, found on this machine: ``uv`` and where
interpreters usually live.

    uv = uv_binary()                       # the `uv` wheel's binary (fargo depends on it)
    interpreter = find_python("3.12", uv)  # Path(".../bin/python3.12"), or PythonNotFound

Looked for, in order: ``uv python find X.Y`` (uv's own installs, the ``PATH``), then
``pythonX.Y`` on the ``PATH`` (not pyenv's shims, which only answer for the selected
version), then pyenv's versions, then ``uv python install X.Y`` (needs the download host
uv uses, python-build-standalone on GitHub, or ``UV_PYTHON_INSTALL_MIRROR``).

Looking costs half a second (uv walks the machine's interpreters): the one found is
remembered in fargo's cache (``pythons.json``, `fargo.local.images.cache`) with its
file's identity (inode, size, times), and used again while that file is unchanged (or,
when it changed, while it still is that version: asking the interpreter costs 20 ms).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from fargo.local.images.cache import CacheError, read_private, write_private

FIND_TIMEOUT_SECONDS = 30.0
INSTALL_TIMEOUT_SECONDS = 300.0
PYTHONS = "pythons.json"  # in fargo's cache: version → the interpreter found, its file's identity


class PythonNotFound(RuntimeError):
    """No interpreter of the version an image asks for."""


def uv_binary() -> Path:
    """The ``uv`` binary: from the ``uv`` wheel (a dependency of fargo), else the PATH."""
    try:
        import uv  # type: ignore[import-not-found, unused-ignore]

        return Path(uv.find_uv_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found is None:
            raise PythonNotFound(
                "uv is not installed: pip install uv (fargo builds images' Python "
                "environments with it)"
            ) from None
        return Path(found)


def find_python(version: str | None, uv: Path, *, env: Mapping[str, str] | None = None) -> Path:
    """An interpreter of ``version`` (``3.12``, ``3``; None: the one fargo runs on);
    ``env``: variables for uv (its cache folder, say)."""
    if version is None:
        return Path(sys.executable)
    remembered = _remembered().get(version)
    if remembered is not None:
        path, identity = Path(remembered["path"]), remembered.get("identity")
        if identity is not None and identity == interpreter_identity(path):
            return path  # the very file that was that version
        if _is_version(path, version):
            _remember(version, path)
            return path
    found = _find(version, uv, {**os.environ, **(env or {})})
    _remember(version, found)
    return found


def interpreter_identity(interpreter: Path) -> str | None:
    """The interpreter's file as it is now (what it links to, its inode, size and times):
    a reinstalled or upgraded one differs. None when it is gone."""
    try:
        real = os.path.realpath(interpreter)
        status = os.stat(real)
    except OSError:
        return None
    return f"{real}:{status.st_ino}:{status.st_size}:{status.st_mtime_ns}:{status.st_ctime_ns}"


def _is_version(interpreter: Path, version: str) -> bool:
    answer = _version_of(interpreter)
    return answer.startswith(version + ".") or answer == version


def _find(version: str, uv: Path, environment: Mapping[str, str]) -> Path:
    for candidate in _candidates(version, uv, environment):
        if _is_version(candidate, version):
            return candidate
    installed = _run([str(uv), "python", "install", version], INSTALL_TIMEOUT_SECONDS, environment)
    if installed.returncode == 0:
        found = _run(
            [str(uv), "python", "find", "--managed-python", version],
            FIND_TIMEOUT_SECONDS,
            environment,
        )
        if found.returncode == 0 and found.stdout.strip():
            return Path(found.stdout.strip())
    tail = " ".join(installed.stderr.strip().splitlines()[-2:])
    raise PythonNotFound(
        f"no Python {version} on this machine, and uv could not install it ({tail}); "
        f"install Python {version} (uv python install {version}, pyenv, or the system's "
        "packages) or change the image's FROM"
    )


def _remembered() -> dict[str, dict[str, str]]:
    """version → {"path": …, "identity": …} (an older cache's plain path: no identity)."""
    try:
        known = json.loads(read_private(PYTHONS) or "{}")
    except ValueError:
        return {}
    if not isinstance(known, dict):
        return {}
    return {
        str(version): {str(k): str(v) for k, v in entry.items()}
        if isinstance(entry, dict) and "path" in entry
        else {"path": str(entry)}
        for version, entry in known.items()
    }


def _remember(version: str, interpreter: Path) -> None:
    entry = {"path": str(interpreter)}
    if (identity := interpreter_identity(interpreter)) is not None:
        entry["identity"] = identity
    with contextlib.suppress(OSError, CacheError):
        write_private(PYTHONS, json.dumps({**_remembered(), version: entry}))


def _candidates(version: str, uv: Path, env: Mapping[str, str]) -> list[Path]:
    found: list[Path] = []
    answer = _run(
        [str(uv), "python", "find", "--no-python-downloads", version], FIND_TIMEOUT_SECONDS, env
    )
    if answer.returncode == 0 and answer.stdout.strip():
        found.append(Path(answer.stdout.strip()))
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if directory and "shims" not in Path(directory).parts:
            program = Path(directory) / f"python{version}"
            if os.path.isfile(program) and os.access(program, os.X_OK):  # never raises
                found.append(program)
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    if os.path.isdir(pyenv) and os.access(pyenv, os.R_OK | os.X_OK):
        for folder in sorted(pyenv.glob(f"{version}.*"), reverse=True):
            program = folder / "bin" / f"python{version}"
            if os.path.isfile(program):
                found.append(program)
    return found


def _version_of(interpreter: Path) -> str:
    answer = _run(
        [str(interpreter), "-I", "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
        FIND_TIMEOUT_SECONDS,
    )
    return answer.stdout.strip() if answer.returncode == 0 else ""


def _run(
    argv: list[str], timeout: float, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, check=False, env=env
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return subprocess.CompletedProcess(argv, 1, "", str(err))
