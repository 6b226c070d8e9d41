"""The inner loop (issue 10): a cold `fargo up`, an edit until new tasks serve, an unchanged
rebuild. Writes docs/benchmarks/inner_loop.md.

python bench/inner_loop_bench.py [--rounds 3]

Each round copies the reference project to a temporary folder, so the edits never touch
the repository; the twin runs in loopback mode on free ports.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FRAGMENT = ROOT / "docs" / "benchmarks" / "inner_loop.md"
FARGO = [sys.executable, "-m", "fargo.cli"]
TARGETS = {"cold up": 10.0, "edit to serving": 3.0, "unchanged rebuild": 0.5}
EDITED = Path("services") / "backend_private" / "app.py"
SERVICE = "backend-private"  # two tasks; its image also runs backend-private-with-alb


def fargo(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [*FARGO, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"fargo {' '.join(args)}: {done.stdout}{done.stderr}")
    return done


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def status(project: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(fargo("status", "--json", cwd=project).stdout)
    return data


def service(project: Path, name: str) -> dict[str, Any]:
    return next(s for s in status(project)["services"] if s["name"] == name)


def one_round(workdir: Path) -> dict[str, float]:
    project = workdir / "project"
    shutil.copytree(
        ROOT / "services", project / "services", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "fargo.yaml", project / "fargo.yaml")
    publish = ["--publish", f"443:{free_port()}", "--publish", f"80:{free_port()}"]
    started = time.monotonic()
    fargo("up", "-d", "--network", "loopback", *publish, cwd=project)
    cold = time.monotonic() - started
    watcher = subprocess.Popen([*FARGO, "watch"], cwd=project, stdout=subprocess.PIPE, text=True)
    try:
        assert watcher.stdout is not None
        while "watching" not in watcher.stdout.readline():
            pass
        before = service(project, SERVICE)["revision"]
        edited = time.monotonic()
        with (project / EDITED).open("a") as app:
            app.write(f"\n# edited at {time.time()}\n")
        while True:
            now = service(project, SERVICE)
            if (
                now["revision"] > before
                and now["healthy"] == now["desired"]
                and len(now["tasks"]) == now["desired"]
            ):
                break
            time.sleep(0.05)
        serving = time.monotonic() - edited
    finally:
        watcher.terminate()
        watcher.wait()
        fargo("down", cwd=project)
    rebuild = unchanged_rebuild(project)
    return {"cold up": cold, "edit to serving": serving, **rebuild}


def unchanged_rebuild(project: Path) -> dict[str, float]:
    """``fargo build`` of images whose inputs did not change (when this fargo has it)."""
    try:
        fargo("build", cwd=project)
    except RuntimeError:
        return {}
    started = time.monotonic()
    fargo("build", cwd=project)
    return {"unchanged rebuild": time.monotonic() - started}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rounds = []
    for number in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="fargo-inner-loop-") as workdir:
            rounds.append(one_round(Path(workdir)))
        print(f"round {number + 1}: {rounds[-1]}", flush=True)
    lines = [
        "## The inner loop (issue 10)",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} by `bench/inner_loop_bench.py` ({args.rounds} "
        "rounds, each on a fresh copy of the reference project, loopback mode). *Cold up*: "
        "`fargo up -d` with a new state folder until every target is healthy (warm package "
        "cache). *Edit to serving*: from saving `services/backend_private/app.py` under "
        "`fargo watch` until backend-private's two tasks are the new revision and healthy "
        "(both services of that image roll at once). *Unchanged rebuild*: `fargo build` "
        "when no input changed.",
        "",
        "| measure | median s | rounds s | target s |",
        "|---|---:|---:|---|",
    ]
    verdicts = []
    for measure, target in TARGETS.items():
        values = [r[measure] for r in rounds if measure in r]
        if not values:
            lines.append(f"| {measure} | — | not measured (no `fargo build`) | ≤ {target:g} |")
            continue
        median = statistics.median(values)
        shown = ", ".join(f"{v:.2f}" for v in values)
        lines.append(f"| {measure} | {median:.2f} | {shown} | ≤ {target:g} |")
        verdicts.append(
            f"- {'met' if median <= target else '**missed**'}: {measure} ≤ {target:g} s"
        )
    FRAGMENT.write_text("\n".join([*lines, "", *verdicts, ""]))
    print(FRAGMENT.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
