"""The services benchmark's report: medians per route, targets, JSON and Markdown.

    report = build_report(runs_by_variant, answers, memory, production="service-kit", ...)
    print_table(report)
    Path("docs/benchmarks/services.md").write_text(markdown(report) + "\\n")

Every figure is the median of the runs (each metric on its own), with the
lowest and highest requests/s beside it: on a shared 2-core machine one run can
be unlucky, and a median of interleaved runs is what an A/B can stand on.
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from wrk_runs import CONNECTIONS, THREADS, Run

# DESIGN.md section 6, on a 2-core machine with wrk sharing the cores.
TARGET_RPS = {"/api/public": 15_000.0, "/api/private": 4_500.0}
TARGET_RSS_MB = 60.0
ROUTES = ("/api/public", "/api/private", "/api/private-with-alb")

# Written when the numbers were read (issue 7); a rerun keeps it, under its own date.
DECISION = (
    "**Decision (issue 7, 2026-12-02): keep the service kit.** By the medians of "
    "that day's run (5 interleaved runs per build and route; the machine was shared, "
    "other CPU 10–30 %), Starlette on stock uvicorn missed both targets (13,640 "
    "req/s on `/api/public`, 3,617 on `/api/private`, against 25,999 and 5,608 for "
    "the kit): it spends 1.9× the kit's CPU per `/api/public` answer and 1.5× per "
    "`/api/private` answer. With the kit's batching protocol Starlette still missed "
    "`/api/private` (4,231). A second run that day (3 runs each, busier machine) "
    "agreed: 11,358 / 3,490 for Starlette, 20,072 / 4,670 for the kit. So "
    "`service_kit.protocol` keeps subclassing uvicorn's private `HttpToolsProtocol`, "
    "with uvicorn pinned to `>=0.30,<0.56` and the shape it relies on checked by "
    "`services/service_kit/tests/test_uvicorn_pin.py`."
)

RunsByRoute = Mapping[str, Sequence[Run]]


@dataclass(frozen=True)
class RouteSummary:
    """Medians over one route's runs."""

    route: str
    runs: int
    requests_per_s: float
    min_requests_per_s: float
    max_requests_per_s: float
    p50_ms: float
    p99_ms: float
    failed: int  # non-2xx answers and socket errors, all runs together
    public_cpu_us_per_request: float
    unattributed_cpu_pct: float


def summarize(route: str, runs: Sequence[Run]) -> RouteSummary:
    """The medians of ``runs`` (at least one)."""
    rps = [r.wrk.requests_per_s for r in runs]
    return RouteSummary(
        route=route,
        runs=len(runs),
        requests_per_s=round(statistics.median(rps), 1),
        min_requests_per_s=round(min(rps), 1),
        max_requests_per_s=round(max(rps), 1),
        p50_ms=round(statistics.median(r.wrk.p50_ms for r in runs), 3),
        p99_ms=round(statistics.median(r.wrk.p99_ms for r in runs), 3),
        failed=sum(r.wrk.non_2xx + r.wrk.socket_errors for r in runs),
        public_cpu_us_per_request=round(
            statistics.median(r.public_cpu_us_per_request for r in runs), 1
        ),
        unattributed_cpu_pct=round(statistics.median(r.unattributed_cpu_pct for r in runs), 1),
    )


def targets(
    summaries: Sequence[RouteSummary], memory: Mapping[str, Mapping[str, float]]
) -> dict[str, bool]:
    """DESIGN.md section 6's targets, met or not, by the medians."""
    by_route = {s.route: s for s in summaries}
    met = {
        f"{route} >= {target:,.0f} req/s": route in by_route
        and by_route[route].requests_per_s >= target
        for route, target in TARGET_RPS.items()
    }
    met[f"RSS <= {TARGET_RSS_MB:g} MB per task"] = all(
        m["rss_mb"] <= TARGET_RSS_MB for m in memory.values()
    )
    met["no non-2xx responses or socket errors"] = all(s.failed == 0 for s in summaries)
    return met


def _row(run: Run) -> dict[str, object]:
    return {
        **asdict(run.wrk),
        "public_cpu_us_per_request": round(run.public_cpu_us_per_request, 1),
        "unattributed_cpu_pct": round(run.unattributed_cpu_pct, 1),
    }


def variant_report(
    label: str,
    runs: RunsByRoute,
    answers: Mapping[str, str],
    memory: Mapping[str, Mapping[str, float]],
) -> dict[str, Any]:
    """One variant's part of the report."""
    summaries = [summarize(route, rs) for route, rs in runs.items() if rs]
    met = targets(summaries, memory)
    return {
        "label": label,
        "answers": dict(answers),
        "results": [asdict(s) for s in summaries],
        "all_runs": {route: [_row(r) for r in rs] for route, rs in runs.items()},
        "memory_mb": {name: dict(m) for name, m in memory.items()},
        "targets": met,
        "targets_met": all(met.values()),
    }


def build_report(
    variants: Mapping[str, dict[str, Any]],
    *,
    production: str,
    duration_s: int,
    repeat: int,
) -> dict[str, Any]:
    """The JSON report: machine, wrk settings, each variant's :func:`variant_report`;
    the top-level ``results``/``targets``/... are those of ``production`` (what ships)."""
    shipped = variants[production]
    return {
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "wrk": {
            "threads": THREADS,
            "connections": CONNECTIONS,
            "duration_s": duration_s,
            "runs_per_route": repeat,
        },
        "production": production,
        **{key: shipped[key] for key in ("answers", "results", "memory_mb", "targets")},
        "targets_met": shipped["targets_met"],
        "variants": dict(variants),
    }


def print_table(report: Mapping[str, Any]) -> None:
    """A human-readable summary of :func:`build_report`'s output."""
    print(
        f"\n{'build':<20}{'route':<24}{'req/s':>9}{'min':>9}{'max':>9}{'p50 ms':>8}"
        f"{'p99 ms':>8}{'failed':>7}{'CPU us/req':>11}{'unattr. %':>10}"
    )
    for name, variant in report["variants"].items():
        for r in variant["results"]:
            print(
                f"{name:<20}{r['route']:<24}{r['requests_per_s']:>9,.0f}"
                f"{r['min_requests_per_s']:>9,.0f}{r['max_requests_per_s']:>9,.0f}"
                f"{r['p50_ms']:>8.2f}{r['p99_ms']:>8.2f}{r['failed']:>7}"
                f"{r['public_cpu_us_per_request']:>11.1f}{r['unattributed_cpu_pct']:>10.1f}"
            )
    print(f"\n{'build':<20}{'process':<20}{'RSS MB':>9}{'peak MB':>9}")
    for name, variant in report["variants"].items():
        for process, m in variant["memory_mb"].items():
            print(f"{name:<20}{process:<20}{m['rss_mb']:>9.1f}{m['peak_rss_mb']:>9.1f}")
    print()
    for name, variant in report["variants"].items():
        for target, ok in variant["targets"].items():
            print(f"{name:<20}{'met   ' if ok else 'MISSED'} {target}")


def markdown(report: Mapping[str, Any]) -> str:
    """The report as Markdown: the shipped services, then the A/B of the builds."""
    return "\n".join([*_services_section(report), "", *_ab_section(report)])


def _services_section(report: Mapping[str, Any]) -> list[str]:
    wrk = report["wrk"]
    lines = [
        "## The services",
        "",
        f"Each task answered directly (no load balancer): `wrk -t{wrk['threads']} "
        f"-c{wrk['connections']} -d{wrk['duration_s']}s` sharing the machine's "
        f"{report['machine']['cpus']} cores with the three task processes; "
        "`/api/private` is one discovery hop (a name, resolved by backend-public), "
        "`/api/private-with-alb` the same hop to an address. Medians of "
        f"{wrk['runs_per_route']} runs per route, measured {report['when'][:10]}, while "
        f"other work took {_other_cpu_pct(report['results']):.0f} % of the machine's CPU "
        "(median). Written by `bench/services_bench.py`.",
        "",
        "| route | requests/s | p50 ms | p99 ms | non-2xx | backend-public CPU µs/request |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        lines.append(
            f"| `{r['route']}` | {r['requests_per_s']:,.0f} | {r['p50_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {r['failed']} | {r['public_cpu_us_per_request']:.0f} |"
        )
    lines += ["", "| task process | RSS MB | peak RSS MB |", "|---|---:|---:|"]
    for name, m in report["memory_mb"].items():
        lines.append(f"| {name} | {m['rss_mb']:.1f} | {m['peak_rss_mb']:.1f} |")
    lines.append("")
    for target, ok in report["targets"].items():
        lines.append(f"- {'met' if ok else '**missed**'}: {target}")
    return lines


def _other_cpu_pct(results: Sequence[Mapping[str, Any]]) -> float:
    return statistics.median(r["unattributed_cpu_pct"] for r in results) if results else 0.0


def _ab_section(report: Mapping[str, Any]) -> list[str]:
    variants: Mapping[str, Any] = report["variants"]
    wrk = report["wrk"]
    lines = [
        "## Service kit vs Starlette (issue 7)",
        "",
        f"Measured {report['when'][:10]} in one run of `bench/services_bench.py`: every "
        "build's three processes run side by side and their wrk runs are interleaved "
        f"(route by route, the order of the builds alternating), {wrk['runs_per_route']} runs "
        f"of {wrk['duration_s']} s per build and route; figures are medians, with the "
        "range of requests/s. The builds share everything but the web layer "
        "(`bench/service_variants.py`): `service kit` is `services/*` as shipped, "
        "`Starlette` is `bench/starlette_services.py`. CPU µs/request is what "
        "backend-public spent per answer, steadier than requests/s on a shared "
        "machine; other CPU % is the share of the machine busy with work that was "
        "neither wrk nor the services during the run.",
        "",
        "| route | build | requests/s | range | p99 ms | backend-public CPU µs/request "
        "| other CPU % | failed | target |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for route in ROUTES:
        for variant in variants.values():
            row = next((r for r in variant["results"] if r["route"] == route), None)
            if row is None:
                continue
            target = TARGET_RPS.get(route)
            verdict = (
                "—"
                if target is None
                else f"{'met' if row['requests_per_s'] >= target else '**missed**'} "
                f"(≥ {target:,.0f})"
            )
            lines.append(
                f"| `{route}` | {variant['label']} | {row['requests_per_s']:,.0f} | "
                f"{row['min_requests_per_s']:,.0f}–{row['max_requests_per_s']:,.0f} | "
                f"{row['p99_ms']:.2f} | {row['public_cpu_us_per_request']:.0f} | "
                f"{row['unattributed_cpu_pct']:.0f} | {row['failed']} | {verdict} |"
            )
    lines += ["", "| build | backend-public RSS MB | backend-private RSS MB |", "|---|---:|---:|"]
    for variant in variants.values():
        memory = variant["memory_mb"]
        lines.append(
            f"| {variant['label']} | {memory['backend_public']['rss_mb']:.1f} | "
            f"{memory['backend_private_a']['rss_mb']:.1f} |"
        )
    lines += [
        "",
        DECISION,
        "",
        "Rerun: `.venv/bin/python bench/services_bench.py --repeat 3` (needs `wrk`, and "
        "`starlette` for the Starlette builds); it rewrites `docs/benchmarks/services.md`, "
        "which `make bench` collects here.",
    ]
    return lines
