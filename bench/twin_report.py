"""The twin benchmark's results and their report (docs/benchmarks/twin.md).

``Results`` is what ``bench/twin_bench.py`` measured; ``render(results)`` is the Markdown
fragment: a summary (which ``bench/run.py`` copies into docs/benchmarks.md), then the
details below ``DETAILS_MARKER``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MODES = ("loopback", "vpc")
ROUTES = ("/api/public", "/api/private", "/api/private-with-alb")
CADDY_ALONE = "Caddy alone (port 80 → 301)"
UP_TARGET_S = 3.0
RATIO_TARGET_PCT = 80.0
DETAILS_MARKER = "<!-- details: docs/benchmarks/twin.md -->"
CHURN = (
    "task killed under load (/api/private)",
    "task killed under load (/api/private-with-alb)",
    "rolling deployment under load (/api/private-with-alb)",
)
# Where a request's CPU goes: (key in a run's "cpu" map, label). The twin's processes
# by role, wrk, and the machine's interrupt time (packets between namespaces are often
# forwarded in softirq, billed to no process).
CPU_PARTS = (
    ("caddy", "Caddy"),
    ("backend-public", "backend-public"),
    ("callees", "called tasks"),
    ("control", "control plane"),
    ("wrk", "wrk"),
    ("irq", "irq+softirq"),
)


@dataclass
class Results:
    duration: int
    rounds: int
    spec: str
    spec_note: str | None = None
    # mode -> one entry per start: wall_s, ready_after_s, status_call_s
    starts: dict[str, list[dict[str, float | None]]] = field(default_factory=dict)
    # mode -> route (or CADDY_ALONE) -> one wrk run per round
    alb: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    # loopback mode, the backend-public task directly: route -> runs
    direct: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # mode -> CHURN name -> wrk run (+ "action", "answers")
    churn: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)

    def error(self, mode: str, what: str, error: BaseException) -> None:
        text = f"{what}: {error}"
        if isinstance(error, subprocess.CalledProcessError):
            text += f"\n{error.stdout or ''}{error.stderr or ''}"
        print(f"    FAILED {text}", file=sys.stderr, flush=True)
        self.errors.setdefault(mode, []).append(text.rstrip())


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def verdict(met: bool, miss: str) -> str:
    return "met" if met else f"**missed** ({miss})"


def start_medians(results: Results, mode: str) -> dict[str, float] | None:
    starts = results.starts.get(mode, [])
    if not starts:
        return None
    keys = ("wall_s", "ready_after_s", "status_call_s")
    return {key: median([float(s.get(key) or 0.0) for s in starts]) for key in keys}


def runs(results: Results, mode: str, route: str) -> list[dict[str, Any]]:
    return results.alb.get(mode, {}).get(route, [])


def run_median(results: Results, mode: str, route: str, key: str) -> float | None:
    rows = runs(results, mode, route)
    return median([float(r.get(key, float("nan"))) for r in rows]) if rows else None


def cpu_median(results: Results, mode: str, route: str, part: str) -> float | None:
    rows = runs(results, mode, route)
    return median([float(r["cpu"][part]["us"]) for r in rows]) if rows else None


def total_cpu(row: dict[str, Any]) -> float:
    return float(sum(part["us"] for part in row["cpu"].values()))


def ratios(results: Results, route: str) -> tuple[float | None, list[float]]:
    """VPC mode's requests/s as % of loopback mode's: of the medians, and per round."""
    loop, vpc = runs(results, "loopback", route), runs(results, "vpc", route)
    if not loop or not vpc:
        return None, []
    per_round = [
        100 * v["requests_per_second"] / lo["requests_per_second"]
        for lo, v in zip(loop, vpc, strict=False)
    ]
    of_medians = (
        100
        * median([v["requests_per_second"] for v in vpc])
        / median([lo["requests_per_second"] for lo in loop])
    )
    return of_medians, per_round


def render(results: Results) -> str:
    """The fragment for docs/benchmarks.md (summary, then details below the marker)."""
    lines = [
        "## The local twin: loopback mode and VPC mode",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d} by `bench/twin_bench.py`: the reference "
        f"system (`{results.spec}`) in both network modes in one run, {results.rounds} rounds "
        "with the modes interleaved (loopback, vpc, loopback, vpc, …); each round starts a "
        "fresh twin per mode (its own state folder, free host ports), measures it and stops "
        f"it. Medians of the rounds; wrk `-t1 -c50 -d{results.duration}s` against the public "
        "HTTPS listener on 127.0.0.1. Rerun: `make bench` or "
        "`.venv/bin/python bench/run.py --only twin`.",
        "",
    ]
    if results.spec_note:
        lines += [f"Note: {results.spec_note}.", ""]
    lines += ["| | loopback | VPC | target |", "|---|---:|---:|---|"]
    lines += start_rows(results)
    lines += throughput_rows(results)
    lines += churn_rows(results)
    lines += ["", *cost_lines(results)]
    lines += failure_lines(results)
    if results.errors:
        lines += ["", "Errors (the twin's own output):", ""]
        for mode, errors in results.errors.items():
            for error in errors:
                lines += [f"{mode} mode:", "", "```text", error, "```", ""]
    lines += ["", "Every run, and CPU per request by process: docs/benchmarks/twin.md.", ""]
    lines += [DETAILS_MARKER, *details(results)]
    return "\n".join(lines) + "\n"


def start_rows(results: Results) -> list[str]:
    out = []
    medians = {mode: start_medians(results, mode) for mode in MODES}
    for key, label in (
        ("wall_s", "`fargo up --detach` to all healthy: wall time"),
        ("ready_after_s", "… the twin's `ready_after_seconds`"),
    ):
        cells, verdicts = [], []
        for mode in MODES:
            got = medians[mode]
            if got is None:
                cells.append("did not start")
                verdicts.append(f"{mode} **missed**")
                continue
            cells.append(f"{got[key]:.2f} s")
            over = got[key] - UP_TARGET_S
            verdicts.append(f"{mode} {verdict(over <= 0, f'by {over:.2f} s')}")
        out.append(
            f"| {label} | {' | '.join(cells)} | ≤ {UP_TARGET_S:g} s: {'; '.join(verdicts)} |"
        )
    return out


def throughput_rows(results: Results) -> list[str]:
    out = []
    for route in (*ROUTES, CADDY_ALONE):
        cells = []
        for mode in MODES:
            rps = run_median(results, mode, route, "requests_per_second")
            p99 = run_median(results, mode, route, "p99_ms")
            cells.append("–" if rps is None else f"{rps:,.0f}/s, p99 {p99 or 0:.1f} ms")
        pct, per_round = ratios(results, route)
        if pct is None:
            target = "not measured"
        else:
            each = ", ".join(f"{r:.0f}" for r in per_round)
            got = f"{pct:.0f} % (rounds: {each})"
            if route == CADDY_ALONE:
                target = f"diagnostic, no target: VPC at {got}"
            else:
                met = verdict(pct >= RATIO_TARGET_PCT, f"by {RATIO_TARGET_PCT - pct:.0f} points")
                target = f"VPC ≥ {RATIO_TARGET_PCT:g} % of loopback: {got}, {met}"
        label = route if route == CADDY_ALONE else f"`{route}` through the public ALB"
        out.append(f"| {label} | {' | '.join(cells)} | {target} |")
    return out


def churn_failed(row: dict[str, Any]) -> int:
    """Failed requests of a churn run: wrk's count, or, when larger, the error answers in
    the tasks' access logs (they also see requests still open when wrk stopped)."""
    return max(int(row["failed"]), int(row.get("log_non_2xx", 0)))


def churn_rows(results: Results) -> list[str]:
    out = []
    for name in CHURN:
        cells, failed = [], []
        for mode in MODES:
            row = results.churn.get(mode, {}).get(name)
            cells.append("–" if row is None else f"{churn_failed(row)} failed")
            if row is not None:
                failed.append(churn_failed(row))
        target = "not measured" if not failed else verdict(sum(failed) == 0, "not 0")
        out.append(f"| {name} | {' | '.join(cells)} | 0 failed: {target} |")
    return out


def cost_lines(results: Results) -> list[str]:
    """What VPC mode's extra CPU per request goes to, route by route (medians)."""
    out = []
    for route in ROUTES:
        loop_rows, vpc_rows = runs(results, "loopback", route), runs(results, "vpc", route)
        if not loop_rows or not vpc_rows:
            continue
        loop_total = median([total_cpu(r) for r in loop_rows])
        vpc_total = median([total_cpu(r) for r in vpc_rows])
        deltas = []
        for part, label in CPU_PARTS:
            lo = cpu_median(results, "loopback", route, part) or 0.0
            vp = cpu_median(results, "vpc", route, part) or 0.0
            deltas.append((vp - lo, f"{label} {lo:.0f} → {vp:.0f}"))
        deltas.sort(key=lambda d: -d[0])
        caddy_sys = [
            median([float(r["cpu"]["caddy"]["sys_us"]) for r in rows])
            for rows in (loop_rows, vpc_rows)
        ]
        out.append(
            f"- `{route}`: {loop_total:.0f} → {vpc_total:.0f} µs of CPU per request "
            f"(VPC mode {100 * (vpc_total / loop_total - 1):+.0f} %; on a saturated machine "
            f"that alone predicts VPC at {100 * loop_total / vpc_total:.0f} % of loopback's "
            f"requests/s). By part, loopback → VPC: {'; '.join(text for _, text in deltas)} "
            f"(Caddy's kernel time {caddy_sys[0]:.0f} → {caddy_sys[1]:.0f})."
        )
    if out:
        out[:0] = [
            "What VPC mode costs, in CPU per request (medians; both modes saturate the "
            "2 cores, so requests/s follow CPU per request unless other load interferes). "
            "Parts sorted by how much more they cost in VPC mode. In VPC mode a packet "
            "between a load balancer and a task crosses two veth pairs and the VPC router "
            "(routing, conntrack, nftables security groups), kernel work billed to the "
            "sending process or to softirq; `/api/public` crosses the VPC once each way "
            "(public ALB → backend-public), `/api/private` twice (→ backend-private), "
            "`/api/private-with-alb` three times (→ internal ALB, a second Caddy in its own "
            "ENI → backend-private-with-alb); in loopback mode every hop is on `lo`:",
            "",
        ]
    return out


def failure_lines(results: Results) -> list[str]:
    """The error answers behind failed churn runs, from wrk and the tasks' access logs."""
    out = []
    for mode in MODES:
        for name, row in results.churn.get(mode, {}).items():
            if not churn_failed(row):
                continue
            said = "; ".join(row.get("answers") or []) or "no error answers"
            out.append(
                f"- {mode} mode, {name}: wrk counted {row['non_2xx']} non-2xx + "
                f"{row['socket_errors']} socket errors (a request wrk gave up on after 2 s "
                f"counts again as non-2xx when its answer comes); the tasks' access logs: "
                f"{said}."
            )
    if out:
        out[:0] = ["", "Failed requests under churn, where they came from:", ""]
        out += ["", downstream_legend()]
    return out


def downstream_legend() -> str:
    """How backend-public turns a callee's failure into an answer (service_kit.downstream)."""
    try:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "services"))
        from service_kit import downstream
    except ImportError:
        return ""
    return (
        "Reading them: backend-public answers 504 when it cannot connect to a callee "
        f"within {downstream.DEFAULT_CONNECT_TIMEOUT_S:g} s (a discovery address, or the "
        "internal load balancer), 504 when a callee has not answered after "
        f"{downstream.DEFAULT_READ_TIMEOUT_S:g} s more, and 502 when a connection is "
        "refused or dropped on the retry too (it retries once, on another address)."
    )


RUN_HEADER = (
    "| route | mode | round | req/s | p50 ms | p99 ms | failed | Caddy µs (sys) "
    "| backend-public µs | called tasks µs | control µs | wrk µs | irq µs | total µs "
    "| other busy | steal |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
)


def run_row(route: str, mode: str, index: int, row: dict[str, Any]) -> str:
    cpu = row["cpu"]
    return (
        f"| {route} | {mode} | {index} | {row['requests_per_second']:,.0f} | "
        f"{row.get('p50_ms', '')} | {row.get('p99_ms', '')} | {row['failed']} | "
        f"{cpu['caddy']['us']:.0f} ({cpu['caddy']['sys_us']:.0f}) | "
        f"{cpu['backend-public']['us']:.0f} | {cpu['callees']['us']:.0f} | "
        f"{cpu['control']['us']:.0f} | {cpu['wrk']['us']:.0f} | {cpu['irq']['us']:.0f} | "
        f"{total_cpu(row):.0f} | {row['other_busy_pct']:.0f} % | {row.get('steal_pct', 0):.0f} % |"
    )


def details(results: Results) -> list[str]:
    lines = [
        "",
        "### Details",
        "",
        "Starts: `fargo up --detach` wall time, and the twin's `ready_after_seconds` (from "
        "the control plane's start until every service was first ready). The difference is "
        "mostly the CLI's Python starting and importing fargo (the control plane is forked "
        "from it, modules imported); one `fargo status --json` call shows what a CLI start "
        "costs:",
        "",
        "| mode | round | wall s | ready_after s | one `fargo status --json` s |",
        "|---|---:|---:|---:|---:|",
    ]
    for mode in MODES:
        for index, start in enumerate(results.starts.get(mode, []), 1):
            lines.append(
                f"| {mode} | {index} | {start['wall_s'] or 0:.2f} | "
                f"{start['ready_after_s'] or 0:.2f} | {start.get('status_call_s') or 0:.2f} |"
            )
    lines += [
        "",
        "Every wrk run, with the CPU each part used per request: Caddy (loopback mode: one "
        "Caddy for both load balancers; VPC mode: one per load balancer, in its ENI; `sys` "
        "its kernel part), backend-public, the tasks it calls, the control plane, wrk, and "
        "the machine's irq+softirq time; `other busy` is the machine's CPU used outside "
        "these during the run (other processes: noise), `steal` the CPU time the hypervisor "
        "gave to other machines. `Caddy alone` is the public load "
        "balancer's port-80 listener answering its HTTPS redirect itself (no task, no VPC "
        "hop):",
        "",
        *RUN_HEADER,
    ]
    for route in (*ROUTES, CADDY_ALONE):
        for mode in MODES:
            for index, row in enumerate(runs(results, mode, route), 1):
                label = route if route == CADDY_ALONE else f"`{route}`"
                lines.append(run_row(label, mode, index, row))
    if results.direct:
        lines += [
            "",
            "For comparison (what the load balancer costs), loopback mode, the backend-public "
            "task called directly:",
            "",
            *RUN_HEADER,
        ]
        for route, rows in results.direct.items():
            for index, row in enumerate(rows, 1):
                lines.append(run_row(f"task `{route}`", "loopback", index, row))
    lines += [
        "",
        "Under churn, in the last round, through the public HTTPS listener: wrk runs, and a "
        "third of the way in one task is SIGKILLed (its pid from `fargo status --json`) or "
        "`fargo update-service` starts a rolling deployment (the command returns when the "
        "deployment is complete: `done at`). wrk's failed = non-2xx responses + socket "
        "errors; it does not count requests still open when it stops, so the tasks' access "
        "logs are read too, until every such request has timed out:",
        "",
        "| mode | what | action | done at | requests/s | p99 ms | wrk non-2xx "
        "| wrk socket errors | error answers in the access logs |",
        "|---|---|---|---|---:|---:|---:|---:|---|",
    ]
    for mode in MODES:
        for name, row in results.churn.get(mode, {}).items():
            logged = "; ".join(row.get("answers") or []) or "none"
            lines.append(
                f"| {mode} | {name} | {row['action']} | "
                f"{row.get('action_done_at_s', '?')} s of {row['seconds']} s | "
                f"{row['requests_per_second']:,.0f} | {row.get('p99_ms', '')} | "
                f"{row['non_2xx']} | {row['socket_errors']} | {logged} |"
            )
    return lines
