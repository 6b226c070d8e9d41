"""Benchmark the demo services with wrk: requests/s, latency, memory per task.

For each build of the services (``bench/service_variants.py``: the shipped
service kit, and the same services on Starlette), starts, as real processes on
loopback addresses (no load balancer in front):

- backend-private twice, on 127.0.0.1:P and 127.0.0.2:P, each with its own task
  id from a small in-process ECS task metadata endpoint;
- backend-public, with ``PRIVATE_DISCOVERY_URL=http://localhost:P`` (a name,
  resolved and cached by the service like a Cloud Map name) and
  ``PRIVATE_ALB_URL=http://127.0.0.2:P``.

Then runs ``wrk -t1 -c50 -d<duration>s --latency`` against ``/api/public``,
``/api/private`` and ``/api/private-with-alb`` of each build, ``--repeat`` times,
interleaved (route by route, the builds' order alternating) so that a busy
moment on the machine does not land on one build only; wrk shares the
machine's cores with the services. Reports medians, and each service's
resident memory from ``/proc/<pid>/status``. Access logs go to a temporary
file, as they would go to the container's log driver.

    python bench/services_bench.py [--duration 10] [--repeat 3] [--builds service-kit,starlette]
        [--out docs/benchmarks-services.json] [--fragment docs/benchmarks/services.md]

The cost of X-Ray tracing (issue 12) is the same benchmark with the tracing builds::

    python bench/services_bench.py --builds service-kit,xray-default,xray-all \
        --out docs/benchmarks-tracing.json --fragment docs/benchmarks/tracing-runs.md

Needs ``wrk`` on PATH (Debian/Ubuntu: ``apt-get install wrk``); builds whose
framework is not installed are left out, saying so.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "services"))

from service_variants import SERVICE_KIT, VARIANTS, Tasks, Variant, running_variants  # noqa: E402
from services_report import ROUTES, build_report, markdown, print_table, variant_report  # noqa: E402
from wrk_runs import WARM_UP_S, Run, find_wrk, measure, memory_mb, run_wrk  # noqa: E402

PRODUCTION = SERVICE_KIT.name  # the build that ships: its figures head the report
# The web-layer A/B (issue 7); the tracing builds run on their own (`bench/run.py`'s
# "tracing": their report goes to docs/benchmarks-tracing.json).
DEFAULT_BUILDS = ("service-kit", "starlette", "starlette-batching")


def get_text(url: str) -> str:
    """Body of a GET (urllib: the bench needs no client library)."""
    from urllib.request import urlopen

    with urlopen(url, timeout=5) as response:
        body: bytes = response.read()
    return body.decode()


def _measure(wrk: str, tasks: Tasks, route: str, duration_s: int) -> Run:
    assert tasks.public.process is not None
    run = measure(wrk, tasks.public.url, tasks.public.process.pid, tasks.pids, route, duration_s)
    print(
        f"  {tasks.variant.name:<20}{route:<24}{run.wrk.requests_per_s:>9,.0f} req/s "
        f"(p99 {run.wrk.p99_ms:.2f} ms, unattributed CPU {run.unattributed_cpu_pct:.0f}%)",
        flush=True,
    )
    return run


def benchmark(
    wrk: str, variants: Sequence[Variant], duration_s: int, repeat: int
) -> dict[str, Any]:
    """Run every build; return the report (see ``services_report.build_report``)."""
    with (
        tempfile.TemporaryDirectory(prefix="services-bench-") as tmp,
        running_variants(Path(tmp), variants) as all_tasks,
    ):
        answers = {
            name: {route: get_text(tasks.public.url + route) for route in ROUTES}
            for name, tasks in all_tasks.items()
        }
        print("answers:", json.dumps(answers, indent=2), flush=True)
        for tasks in all_tasks.values():  # warm up: connection pools, caches, allocator
            for route in ROUTES:
                run_wrk(wrk, tasks.public.url + route, route, WARM_UP_S)
        runs: dict[str, dict[str, list[Run]]] = {
            name: {route: [] for route in ROUTES} for name in all_tasks
        }
        order = list(all_tasks.values())
        for _ in range(repeat):
            for route in ROUTES:
                for tasks in order:
                    runs[tasks.variant.name][route].append(_measure(wrk, tasks, route, duration_s))
                order.reverse()
        reports = {
            name: variant_report(
                tasks.variant.label,
                runs[name],
                answers[name],
                {
                    process_name: memory_mb(process.process.pid)
                    for process_name, process in tasks.processes.items()
                    if process.process is not None
                },
            )
            for name, tasks in all_tasks.items()
        }
    report: dict[str, Any] = build_report(
        reports, production=PRODUCTION, duration_s=duration_s, repeat=repeat
    )
    return report


def choose_variants(names: str) -> list[Variant]:
    """The builds named (comma-separated), the shipped one first; exits on unknown names."""
    chosen = []
    for name in dict.fromkeys([PRODUCTION, *filter(None, names.split(","))]):
        if name not in VARIANTS:
            sys.exit(f"error: unknown build {name!r}; known: {', '.join(VARIANTS)}")
        variant = VARIANTS[name]
        if variant.available():
            chosen.append(variant)
        else:
            print(f"  (leaving out {name}: {variant.needs} is not installed)", flush=True)
    return chosen


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per build and route; medians count"
    )
    parser.add_argument(
        "--builds",
        default=",".join(DEFAULT_BUILDS),
        help=f"comma-separated builds to compare (known: {', '.join(VARIANTS)})",
    )
    parser.add_argument(
        "--out", type=Path, default=REPO / "docs" / "benchmarks-services.json", help="JSON file"
    )
    parser.add_argument(
        "--fragment",
        type=Path,
        default=REPO / "docs" / "benchmarks" / "services.md",
        help="Markdown sections for docs/benchmarks.md (bench/run.py collects them)",
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when the shipped build misses a target"
    )
    args = parser.parse_args(argv)
    wrk = find_wrk()
    report = benchmark(wrk, choose_variants(args.builds), args.duration, max(args.repeat, 1))
    print_table(report)
    for path, text in ((args.out, json.dumps(report, indent=2)), (args.fragment, markdown(report))):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
        print(f"wrote {path}")
    return 1 if args.check and not report["targets_met"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
