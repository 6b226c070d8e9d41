"""Benchmark of ``fargo synth``: the reference spec to CloudFormation, cold and warm.

    python bench/synth_bench.py [--spec fargo.yaml] [--runs 3]

Measures `fargo.cloud.synth.synthesize` (cdk-nag included, as in ``fargo synth``):
- in-process: the first call of a process (starts jsii's Node and loads aws-cdk-lib)
  and later calls (warm: the kernel is up);
- as a new process (``python -c`` calling it, what ``fargo synth`` costs a user):
  cold (an empty jsii package cache, so aws-cdk-lib is unpacked first) and warm
  (the cache filled, the usual case). Target: ≤ 5 s warm.
Writes ``docs/benchmarks/synth.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FRAGMENT = ROOT / "docs" / "benchmarks" / "synth.md"
TARGET_WARM_SECONDS = 5.0

CHILD = """
import sys, time
from pathlib import Path
started = time.perf_counter()
from fargo.spec import load_spec
from fargo.cloud.synth import synthesize
result = synthesize(load_spec(sys.argv[1]), Path(sys.argv[2]))
assert not result.nag_findings, result.nag_findings
print(time.perf_counter() - started)
"""


def in_process(spec_path: Path, runs: int) -> tuple[float, list[float]]:
    from fargo.cloud.synth import synthesize
    from fargo.spec import load_spec

    spec = load_spec(spec_path)
    times = []
    with tempfile.TemporaryDirectory() as out:
        for _ in range(runs + 1):
            started = time.perf_counter()
            synthesize(spec, Path(out), image_tags="bench")
            times.append(time.perf_counter() - started)
    return times[0], times[1:]


def subprocess_run(spec_path: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall time of the whole process, time inside it from imports to templates)."""
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        completed = subprocess.run(
            [sys.executable, "-c", CHILD, str(spec_path), out],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        wall = time.perf_counter() - started
    return wall, float(completed.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", type=Path, default=ROOT / "fargo.yaml")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as cache:
        cold_wall, _ = subprocess_run(args.spec, {**env, "JSII_RUNTIME_PACKAGE_CACHE_ROOT": cache})
    subprocess_run(args.spec, env)  # fill the user's package cache
    warm = [subprocess_run(args.spec, env) for _ in range(args.runs)]
    warm_wall = statistics.median(wall for wall, _ in warm)
    first, later = in_process(args.spec, args.runs)
    later_median = statistics.median(later)

    verdict = "meets" if warm_wall <= TARGET_WARM_SECONDS else "MISSES"
    lines = [
        "## `fargo synth` (reference system → CloudFormation, cdk-nag included)",
        "",
        f"Target: ≤ {TARGET_WARM_SECONDS:.0f} s with a warm cache — **{verdict}** it "
        f"({warm_wall:.2f} s). Median of {args.runs} runs; `bench/synth_bench.py`.",
        "",
        "| run | seconds |",
        "|---|---|",
        f"| new process, cold (empty jsii package cache) | {cold_wall:.2f} |",
        f"| new process, warm (`fargo synth` as a user runs it) | {warm_wall:.2f} |",
        f"| in-process, first call (starts jsii's Node) | {first:.2f} |",
        f"| in-process, later calls (kernel up) | {later_median:.2f} |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    FRAGMENT.parent.mkdir(parents=True, exist_ok=True)
    FRAGMENT.write_text(text, encoding="utf-8")
    return 0 if warm_wall <= TARGET_WARM_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
