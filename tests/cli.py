"""The real `fargo` CLI in a subprocess, as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_fargo(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -m fargo.cli ARGS`` in ``cwd``, output captured; the exit code is not checked."""
    return subprocess.run(
        [sys.executable, "-m", "fargo.cli", *args],
        cwd=cwd,
        text=True,
        capture_output=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def modules_loaded_by(command: list[str], modules: tuple[str, ...]) -> list[str]:
    """Which of ``modules`` ``fargo COMMAND`` imports, run in a fresh interpreter in ROOT."""
    code = (
        f"import sys; from fargo.cli import main; main({command!r}); "
        f"print(sorted(m for m in {modules!r} if m in sys.modules))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    loaded: list[str] = eval(run.stdout.splitlines()[-1])
    return loaded
