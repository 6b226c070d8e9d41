"""Benchmark of building images from their Dockerfiles (issue 10): cold, unchanged, changed.

    python bench/images_bench.py [--runs 20]

For the reference system's images and the e2e tests' own services (tests/e2e/byo.yaml), in
a new state folder (uv's package cache as this machine has it, usually warm):
- first build: each image's files laid out and its Python environment made by uv;
- unchanged rebuild: the same images again (what `fargo up` and `fargo update-service`
  pay for an image nobody changed), in-process (`LocalRegistry.push`) and as the command
  ``fargo build`` (a new process, Python's start-up included). Target: ≤ 0.5 s;
- a source file changed: a new image, its environment found by the key of its
  requirements (nothing to install).
Writes ``docs/benchmarks/images.md``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FRAGMENT = ROOT / "docs" / "benchmarks" / "images.md"
TARGET_UNCHANGED_SECONDS = 0.5
SPECS = {
    "reference system": ROOT / "fargo.yaml",
    "byo (Flask, FastAPI)": ROOT / "tests/e2e/byo.yaml",
}


def push_all(spec_path: Path, state: Path) -> list[tuple[str, float, bool]]:
    from fargo.local.ecr.registry import LocalRegistry
    from fargo.spec import load_spec

    spec = load_spec(spec_path)
    registry = LocalRegistry(state / "registry", spec_path.parent)
    results = []
    for name, image in spec.images.items():
        started = time.perf_counter()
        pushed = registry.push(name, image)
        results.append((name, time.perf_counter() - started, pushed.cached))
    return results


def bench(label: str, spec_path: Path, runs: int) -> list[str]:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        # The spec and its contexts are copied: editing a source file changes nothing here.
        from fargo.local.state.folder import prepare
        from fargo.spec import load_spec

        tree = Path(folder) / "tree"
        tree.mkdir()
        spec = tree / spec_path.name
        shutil.copyfile(spec_path, spec)
        for context in {image.context for image in load_spec(spec_path).images.values()}:
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(spec_path.parent / context, tree / context, ignore=ignore)
        state = Path(folder) / "state"
        prepare(state)  # a state folder as `fargo build` makes it
        first = push_all(spec, state)
        unchanged = [sum(s for _, s, _ in push_all(spec, state)) for _ in range(runs)]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
        }
        command = []
        for _ in range(5):
            started = time.perf_counter()
            argv = ["build", "-f", str(spec), "--state-dir", str(state)]
            done = subprocess.run(
                [sys.executable, "-m", "fargo.cli", *argv],
                capture_output=True,
                text=True,
                env=env,
                cwd=tree,
                check=False,
            )
            if done.returncode != 0:
                raise SystemExit(f"fargo build failed:\n{done.stderr}{done.stdout}")
            command.append(time.perf_counter() - started)
        source = next(
            p for p in sorted((tree).rglob("*.py")) if "service_kit" in p.parts or "byo" in p.parts
        )
        source.write_text(source.read_text() + "\n# changed\n")
        changed = push_all(spec, state)
    images = len(first)
    rows.append(
        f"| {label} | {images} | {sum(s for _, s, _ in first):.2f} | "
        f"{statistics.median(unchanged):.3f} | {statistics.median(command):.2f} | "
        f"{sum(s for _, s, c in changed if not c):.2f} |"
    )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    rows: list[str] = []
    medians = []
    for label, spec in SPECS.items():
        rows += bench(label, spec, args.runs)
        medians.append(float(rows[-1].split("|")[4]))
    worst = max(medians)
    verdict = "**meets** it" if worst <= TARGET_UNCHANGED_SECONDS else "**misses** it"
    FRAGMENT.write_text(
        "\n".join(
            [
                "## Images from Dockerfiles (issue 10)",
                "",
                f"### Unchanged image rebuild: target ≤ {TARGET_UNCHANGED_SECONDS} s — {verdict} "
                f"({worst:.3f} s for every image of a spec, in-process)",
                "",
                "Seconds, in a new state folder with this machine's caches as they are (as on "
                "a machine that built them once). *first build*: each image's files copied "
                "from this machine's layouts (laid out and compiled when no identical image "
                "was built before), its Python environment found by its key (made by uv when "
                "missing); *unchanged*: every image again, median of "
                f"{args.runs} (what `fargo up` pays per start); *`fargo build`*: the same as a "
                "new process, Python's start-up and imports included, median of 5; *source "
                "changed*: one Python file edited (in `service_kit`, which every image copies), "
                "the images that copy it laid out and compiled again (their environment found "
                "by its requirements' key). `bench/images_bench.py`.",
                "",
                "| spec | images | first build | unchanged (in-process) "
                "| unchanged (`fargo build`) | source changed |",
                "|---|---:|---:|---:|---:|---:|",
                *rows,
                "",
            ]
        )
    )
    print(FRAGMENT.read_text())
    return 0 if worst <= TARGET_UNCHANGED_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
