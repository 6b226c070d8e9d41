"""``make bench``: every benchmark, their figures collected in docs/benchmarks.md.

python bench/run.py [--only services,twin,synth,images,inner_loop,access_logs,tracing,
                      control_plane_away,idle_connections]
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FRAGMENTS = ROOT / "docs" / "benchmarks"
BENCHES = {
    "services": ["bench/services_bench.py"],
    "twin": ["bench/twin_bench.py"],
    "synth": ["bench/synth_bench.py"],
    "images": ["bench/images_bench.py"],
    "inner_loop": ["bench/inner_loop_bench.py"],
    "control_plane_away": ["bench/control_plane_away_bench.py"],
    "idle_connections": ["bench/idle_connections_bench.py"],
    "access_logs": ["bench/access_log_bench.py"],
    # X-Ray tracing's cost: the services with tracing off and on (tracing.md summarises;
    # tracing-runs.md has every figure), then the per-request CPU of the tracing code.
    "tracing": [
        "bench/services_bench.py",
        "--builds",
        "service-kit,xray-default,xray-all",
        "--out",
        "docs/benchmarks-tracing.json",
        "--fragment",
        "docs/benchmarks/tracing-runs.md",
    ],
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default=",".join(BENCHES), help="comma-separated subset")
    args = parser.parse_args()
    failed = []
    for name in args.only.split(","):
        print(f"== {name} ==", flush=True)
        if subprocess.run([sys.executable, *BENCHES[name]], cwd=ROOT, check=False).returncode:
            failed.append(name)
    write_summary()
    if failed:
        print(f"benchmarks failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def write_summary() -> None:
    cpu = platform.processor() or platform.machine()
    parts = [
        "# Benchmarks",
        "",
        f"Written by `make bench` on {datetime.now(UTC):%Y-%m-%d} ({cpu}, "
        f"{len(__import__('os').sched_getaffinity(0))} cores, Python {platform.python_version()}). "
        "Targets are from DESIGN.md §6. Rerun everything with `make bench`, or one part with "
        "`.venv/bin/python bench/run.py --only twin`.",
        "",
    ]
    for name in BENCHES:
        fragment = FRAGMENTS / f"{name}.md"
        if fragment.exists():
            # A fragment may keep its details to itself, below a "<!-- details: … -->" line.
            parts.append(fragment.read_text().split("<!-- details:", 1)[0].strip())
            parts.append("")
    (ROOT / "docs" / "benchmarks.md").write_text("\n".join(parts))


if __name__ == "__main__":
    raise SystemExit(main())
