"""``fargo up`` on a running twin: the control plane re-reads its spec file and applies it
as a diff; this prints what it changed.

    status = apply_spec(Path(".fargo"), sys.stdout)              # 0: applied (or no changes)
    status = apply_spec(state_dir, out, spec_path=Path("shop.yaml"))  # refuses another file

`fargo watch` calls `apply_spec` when the spec file changes. The answer comes once every
change is applied, rolling deployments included (`fargo events` shows their progress
meanwhile), so the lines printed are what happened, not what was asked.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any, TextIO

from fargo.local.control.client import (
    ControlClient,
    ControlPlaneErrorAnswer,
    ControlPlaneUnavailable,
)
from fargo.local.ecs.deployment import DEPLOYMENT_TIMEOUT_SECONDS
from fargo.local.state import folder as state

# The answer waits for rolling deployments, which give up after their own timeout.
APPLY_TIMEOUT_SECONDS = DEPLOYMENT_TIMEOUT_SECONDS + 60.0
EXIT_REFUSED = 1


def twin_running(state_dir: Path) -> bool:
    """Whether a control plane runs on ``state_dir`` (its record names a live process)."""
    record = state.control_plane(state_dir)
    return record is not None and record.alive()


def apply_spec(
    state_dir: Path,
    out: TextIO,
    *,
    spec_path: Path | None = None,
    err: TextIO | None = None,
) -> int:
    """Have the twin on ``state_dir`` apply its spec file again; print each change (or "no
    changes") to ``out`` and return 0, or print why not to ``err`` (default stderr) and
    return non-zero. With ``spec_path``, refuse when the twin runs another spec file."""
    errors = err if err is not None else sys.stderr
    client = ControlClient(state.control_socket(state_dir), timeout=APPLY_TIMEOUT_SECONDS)
    try:
        if spec_path is not None:
            running = (asyncio.run(client.get("/status")) or {}).get("spec")
            if running is not None and Path(running).resolve() != spec_path.resolve():
                print(
                    f"fargo up: the twin in {state_dir} runs {running}, not {spec_path}; "
                    f"edit that file and run `fargo up -f {running}` again, or give this one "
                    "its own state folder (--state-dir), or `fargo down` first",
                    file=errors,
                )
                return EXIT_REFUSED
        answer: dict[str, Any] = asyncio.run(client.post("/spec", timeout=APPLY_TIMEOUT_SECONDS))
    except ControlPlaneErrorAnswer as error:
        if error.status == 409:
            print(f"fargo up: the running twin cannot take this spec:\n{error.text}", file=errors)
        elif error.status == 400:  # the spec's own errors, located
            print(error.text, file=errors)
        else:
            print(f"fargo up: {error}", file=errors)
        return EXIT_REFUSED
    except ControlPlaneUnavailable as error:
        print(
            f"fargo up: {error}; if the twin is still starting, run `fargo up` again once it "
            "is ready",
            file=errors,
        )
        return EXIT_REFUSED
    for line in answer.get("warnings", []):
        print(line, file=errors)
    changes = answer.get("changes", [])
    if not changes:
        print(f"no changes: the twin runs {answer.get('spec')} as it is", file=out)
    for line in changes:
        print(line, file=out)
    if not answer.get("completed", True):
        print("fargo up: not every change completed (see above)", file=errors)
        return EXIT_REFUSED
    return 0
