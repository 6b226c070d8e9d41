"""A twin started with the real CLI (`fargo up --detach`), torn down with `fargo down`."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
from tests.cli import run_fargo

ROOT = Path(__file__).resolve().parents[2]


def fargo(*args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    result = run_fargo(*args, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(
            f"fargo {' '.join(args)} exited {result.returncode}:\n{result.stderr}{result.stdout}"
        )
    return result


@dataclass
class Twin:
    spec: Path
    state_dir: Path

    def status(self) -> dict[str, Any]:
        return json.loads(fargo("status", "--json", "--state-dir", str(self.state_dir)).stdout)  # type: ignore[no-any-return]

    @property
    def ca(self) -> str:
        return str(self.state_dir / "ca" / "ca.pem")

    @functools.cached_property
    def endpoints(self) -> dict[str, Any]:
        """The twin's endpoints; they don't change while it runs."""
        return self.status()["endpoints"]  # type: ignore[no-any-return]

    def url(self, lb: str, scheme: str) -> str:
        urls = self.endpoints["load_balancers"][lb]
        return next(u for u in urls if u.startswith(scheme + "://"))

    def service(self, name: str) -> dict[str, Any]:
        return next(s for s in self.status()["services"] if s["name"] == name)

    def processes(self) -> list[psutil.Process]:
        """Every live process the twin started (their environment names this state folder)."""
        found = []
        marker = str(self.state_dir)
        for process in psutil.process_iter(["cmdline"]):
            try:
                if any(marker in part for part in process.info["cmdline"] or []):
                    found.append(process)
                    continue
                if any(marker in v for v in process.environ().values()):
                    found.append(process)
            except psutil.Error:
                continue
        return found


def wait_for(condition: Callable[[], Any], timeout: float = 30, message: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"{message} not met within {timeout}s (last: {last!r})")


def start_twin(spec: Path, state_dir: Path) -> Iterator[Twin]:
    twin = Twin(spec, state_dir)
    fargo("up", "--detach", "-f", str(spec), "--state-dir", str(state_dir))
    try:
        yield twin
    finally:
        fargo("down", "--state-dir", str(state_dir), check=False)


@pytest.fixture(scope="module")
def reference_twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    yield from start_twin(ROOT / "fargo.yaml", tmp_path_factory.mktemp("reference") / "state")


@pytest.fixture(scope="module")
def second_twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    yield from start_twin(
        Path(__file__).with_name("second.yaml"), tmp_path_factory.mktemp("second") / "state"
    )


def up_in_foreground(twin: Twin) -> tuple[subprocess.Popen[str], list[str]]:
    """`fargo up` in the foreground, read until it says it is ready; its output so far."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fargo.cli",
            "up",
            "-f",
            str(twin.spec),
            "--state-dir",
            str(twin.state_dir),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line)
        if "ready; Ctrl-C stops everything" in line:
            break
    return process, lines


def all_gone(processes: list[psutil.Process]) -> bool:
    return not [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
