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
