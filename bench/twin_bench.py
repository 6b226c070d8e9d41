"""Benchmarks of the local twin: start-up, load balancer cost, failures under churn.

    python bench/twin_bench.py [--duration 10] [--spec fargo.yaml]

Measures, for the reference system:
- ``fargo up --detach`` until every target is healthy (target ≤ 3 s);
- ``/api/public`` and ``/api/private`` through the public HTTPS load balancer and
  on the task directly (wrk, 1 thread, 50 connections): requests/s, p50, p99;
- a task killed under load and a rolling deployment under load: failed requests
  (target: zero).
Writes ``docs/benchmarks/twin.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FARGO = [sys.executable, "-m", "fargo.cli"]


def fargo(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FARGO, *args], cwd=ROOT, text=True, capture_output=True, check=check)


def wrk(url: str, seconds: int, ca: str | None = None) -> dict[str, Any]:
    """Run wrk (1 thread, 50 connections) and parse requests/s, latency and errors."""
    argv = ["wrk", "-t1", "-c50", f"-d{seconds}s", "--latency", url]
    out = subprocess.run(argv, text=True, capture_output=True, check=True).stdout
    result: dict[str, Any] = {"url": url, "seconds": seconds}
    result["requests_per_second"] = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    result["requests"] = int(re.search(r"(\d+) requests in", out)[1])  # type: ignore[index]
    for pct in ("50", "99"):
        match = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out)
        if match:
            factor = {"us": 0.001, "ms": 1.0, "s": 1000.0}[match[2]]
            result[f"p{pct}_ms"] = round(float(match[1]) * factor, 3)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non_2xx"] = int(non2xx[1]) if non2xx else 0
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["socket_errors"] = sum(int(x) for x in errors.groups()) if errors else 0
    result["failed"] = result["non_2xx"] + result["socket_errors"]
    return result


def status(state_dir: str) -> dict[str, Any]:
    return json.loads(fargo("status", "--json", "--state-dir", state_dir).stdout)  # type: ignore[no-any-return]


def task_of(data: dict[str, Any], service: str) -> list[dict[str, Any]]:
    return next(s["tasks"] for s in data["services"] if s["name"] == service)


def under_load(url: str, seconds: int, action: Any) -> dict[str, Any]:
    """Run wrk for ``seconds`` and fire ``action`` a third of the way in."""
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.update(wrk(url, seconds)))
    thread.start()
    time.sleep(seconds / 3)
    result["action"] = action()
    thread.join()
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--spec", default="fargo.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "twin.md")
    args = parser.parse_args()
    state_dir = tempfile.mkdtemp(prefix="fargo-bench-")
    results: dict[str, Any] = {}
    try:
        started = time.perf_counter()
        fargo("up", "--detach", "-f", args.spec, "--state-dir", state_dir)
        results["up_detach_seconds"] = round(time.perf_counter() - started, 2)
        data = status(state_dir)
        https = next(
            u
            for urls in data["endpoints"]["load_balancers"].values()
            for u in urls
            if u.startswith("https")
        )
        public_task = task_of(data, "backend-public")[0]["address"]
        for route in ("/api/public", "/api/private"):
            results[f"alb {route}"] = wrk(https + route, args.duration)
            results[f"task {route}"] = wrk(f"http://{public_task}{route}", args.duration)

        def kill_one() -> str:
            victim = task_of(status(state_dir), "backend-private-with-alb")[0]
            os.kill(victim["pid"], signal.SIGKILL)
            return f"SIGKILL task {victim['id']}"

        results["task killed under load (/api/private-with-alb)"] = under_load(
            https + "/api/private-with-alb", args.duration, kill_one
        )

        def deploy() -> str:
            fargo("update-service", "backend-private-with-alb", "--state-dir", state_dir)
            return "rolling deployment of backend-private-with-alb"

        results["rolling deployment under load (/api/private-with-alb)"] = under_load(
            https + "/api/private-with-alb", args.duration * 2, deploy
        )
    finally:
        fargo("down", "--state-dir", state_dir, check=False)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(results))
    print(render(results))
    return 0


def render(results: dict[str, Any]) -> str:
    lines = [
        "## The local twin",
        "",
        f"`fargo up --detach` until every target is healthy: **{results['up_detach_seconds']} s** "
        "(target ≤ 3 s).",
        "",
        "| what | requests/s | p50 ms | p99 ms | failed |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in results.items():
        if isinstance(row, dict):
            lines.append(
                f"| {name} | {row['requests_per_second']:,.0f} | {row.get('p50_ms', '')} | "
                f"{row.get('p99_ms', '')} | {row['failed']} |"
            )
    lines += [
        "",
        "wrk: 1 thread, 50 connections; `alb` rows go through the public HTTPS load balancer "
        "(Caddy), `task` rows call the backend-public task directly. Rerun: `make bench` or "
        "`.venv/bin/python bench/twin_bench.py`.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
