"""Running fargo as ``nobody`` in the e2e tests (rootless twins): a virtualenv it may
read, a folder of its own, and subordinate ids that never touch the machine's files. The
fixtures are the e2e tests' (`tests.e2e.conftest` imports them).

    started = as_nobody(str(venv / "bin" / "fargo"), "up", "--detach", ..., ids=nobody_ids)
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fargo.local.ec2.id_map import Range, subordinate_ranges

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3.11")  # readable by other users, unlike root's pyenv
NOBODY_VENV = Path("/tmp/fargo-e2e-nobody-venv")


@pytest.fixture(scope="module")
def nobody_venv() -> Path:
    """A virtualenv on the system interpreter, readable by ``nobody``, with fargo in it."""
    if not SYSTEM_PYTHON.exists() or os.geteuid() != 0:
        pytest.skip("needs root and /usr/bin/python3.11 to act as another user")
    python = NOBODY_VENV / "bin" / "python"
    # Made anew when fargo's dependencies change: pip leaves those dropped installed.
    stamp = NOBODY_VENV / "pyproject.sha256"
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if python.exists() and (not stamp.exists() or stamp.read_text() != wanted):
        shutil.rmtree(NOBODY_VENV)
    if not python.exists():
        subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", str(NOBODY_VENV)], check=True)
    # Not editable: the checkout may sit where only root may read (a CI clone in a 0700 folder).
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(ROOT)],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "--no-deps", "--force-reinstall", str(ROOT)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    subprocess.run(["chmod", "-R", "a+rX", str(NOBODY_VENV)], check=True)
    stamp.write_text(wanted)
    return NOBODY_VENV


NOBODY_UID = 65534
SUBORDINATE = Range(2_000_000_000, 65536)  # nobody's, where a test gives it one


@dataclass(frozen=True)
class IdFiles:
    """The subordinate ids a test's twin sees: its range (None: none) and the files."""

    range: Range | None
    subuid: Path
    subgid: Path


ROOTS_SETTINGS = frozenset({"FARGO_CACHE_DIR", "XDG_CACHE_HOME", "UV_CACHE_DIR"})


def as_nobody(
    *argv: str, timeout: float = 180, ids: IdFiles | None = None
) -> subprocess.CompletedProcess[str]:
    """``argv`` as ``nobody``, with none of root's fargo settings (``su`` keeps the
    environment: a root-owned ``FARGO_CACHE_DIR`` is not nobody's to use); ``ids``: the
    subordinate id files it sees, mounted over /etc's in a mount namespace of its own
    (which the processes it starts keep)."""
    environment = {k: v for k, v in os.environ.items() if k not in ROOTS_SETTINGS}
    command = ["su", "nobody", "-s", "/bin/sh", "-c", shlex.join(argv)]
    if ids is not None and ids.range is not None:
        mounts = 'mount --bind "$1" /etc/subuid && mount --bind "$2" /etc/subgid && shift 2'
        command = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                   f'{mounts} && exec "$@"', "sh", str(ids.subuid), str(ids.subgid),
                   *command]  # fmt: skip
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd="/tmp",
        check=False,
        env=environment,
    )


@pytest.fixture
def nobody_folder() -> Iterator[Path]:
    """A folder of nobody's own (pytest's temporary folders are root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="fargo-e2e-nobody-"))
    shutil.chown(folder, "nobody")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=["one id", "subordinate ids"])
def nobody_ids(request: pytest.FixtureRequest, nobody_folder: Path) -> Iterator[IdFiles]:
    """nobody's subordinate ids for the twin it starts: none (the machine's), or a range, in
    files of the test's own that `as_nobody` mounts over /etc/subuid and /etc/subgid in a
    mount namespace of the `fargo up` alone (the machine's files are never touched)."""
    if request.param == "subordinate ids" and shutil.which("newuidmap") is None:
        pytest.skip("newuidmap is not installed (make system-packages installs uidmap)")
    if request.param == "one id" and subordinate_ranges(NOBODY_UID) is not None:
        # Without the machine's files mounted over (a mount namespace of the test's own
        # would hide the tasks' from `fargo exec`), "one id" needs nobody to have none.
        pytest.skip("nobody has subordinate ids on this machine")
    lines = f"nobody:{SUBORDINATE.start}:{SUBORDINATE.count}\n" if request.param != "one id" else ""
    files = IdFiles(
        SUBORDINATE if lines else None, nobody_folder / "subuid", nobody_folder / "subgid"
    )
    for path in (files.subuid, files.subgid):
        path.write_text(lines)
        path.chmod(0o644)
    yield files
