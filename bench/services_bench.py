"""Benchmark the demo services with wrk: requests/s, latency, memory per task.

Starts, as real processes on loopback addresses (no load balancer in front):

- backend-private twice, on 127.0.0.1:P and 127.0.0.2:P, each with its own task
  id from a small in-process ECS task metadata endpoint;
- backend-public, with ``PRIVATE_DISCOVERY_URL=http://localhost:P`` (a name,
  resolved and cached by the service like a Cloud Map name) and
  ``PRIVATE_ALB_URL=http://127.0.0.2:P``.

Then runs ``wrk -t1 -c50 -d<duration>s --latency`` against ``/api/public``,
``/api/private`` and ``/api/private-with-alb`` (wrk shares the machine's cores
with the services), and reads each service's resident memory from
``/proc/<pid>/status``. Access logs go to a temporary file, as they would go
to the container's log driver.

    python bench/services_bench.py [--duration 10] [--out docs/benchmarks-services.json]

Needs ``wrk`` on PATH (Debian/Ubuntu: ``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "services"))

from testkit import MetadataServer, ServiceProcess, free_port  # noqa: E402

CONNECTIONS = 50
THREADS = 1
WARM_UP_S = 2
# DESIGN.md section 6, on a 2-core machine with wrk sharing the cores.
TARGET_RPS = {"/api/public": 15_000.0, "/api/private": 4_500.0}
TARGET_RSS_MB = 60.0
ROUTES = ("/api/public", "/api/private", "/api/private-with-alb")
QUIET_WAIT_S = 60.0
QUIET_BUSY_SHARE = 0.10
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run measured."""

    route: str
    requests_per_s: float
    requests: int
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int


@dataclass(frozen=True)
class Run:
    """A wrk run, with the CPU the services used and what other processes took."""

    wrk: WrkResult
    # CPU time backend-public spent per request: steadier than req/s on a busy machine.
    public_cpu_us_per_request: float
    # Share of the machine's CPU busy but not charged to wrk or the services: other
    # processes, or kernel work nobody is billed for (large under gVisor).
    unattributed_cpu_pct: float


def find_wrk() -> str:
    """Path of the wrk binary, or exit saying how to install it."""
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit("error: wrk not found on PATH; install it first: apt-get install wrk")
    return wrk


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if match is None:
        raise ValueError(f"unexpected wrk latency {value!r}")
    return float(match[1]) * _UNIT_MS[match[2]]


def parse_wrk(route: str, output: str) -> WrkResult:
    """Parse ``wrk --latency`` text output."""

    def find(pattern: str) -> re.Match[str] | None:
        return re.search(pattern, output, re.MULTILINE)

    rps = find(r"^Requests/sec:\s+([\d.]+)")
    total = find(r"^\s+(\d+) requests in")
    p50 = find(r"^\s+50%\s+(\S+)")
    p99 = find(r"^\s+99%\s+(\S+)")
    if rps is None or total is None or p50 is None or p99 is None:
        raise ValueError(f"cannot parse wrk output:\n{output}")
    non_2xx = find(r"Non-2xx or 3xx responses:\s+(\d+)")
    errors = find(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
    return WrkResult(
        route=route,
        requests_per_s=float(rps[1]),
        requests=int(total[1]),
        p50_ms=_ms(p50[1]),
        p99_ms=_ms(p99[1]),
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
    )


def run_wrk(wrk: str, url: str, route: str, duration_s: int) -> WrkResult:
    """One wrk run against ``url``."""
    command = [wrk, f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{duration_s}s", "--latency", url]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return parse_wrk(route, output)


def machine_cpu() -> tuple[int, int]:
    """(busy, total) CPU time of the whole machine so far, in clock ticks."""
    fields = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def process_cpu(pid: int) -> int:
    """User + system CPU time of process ``pid`` so far, in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


def children_cpu() -> float:
    """CPU seconds of this process's finished children (wrk) and of itself."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = resource.getrusage(resource.RUSAGE_SELF)
    return children.ru_utime + children.ru_stime + own.ru_utime + own.ru_stime


def wait_for_quiet(max_wait_s: float = QUIET_WAIT_S) -> None:
    """Wait (a while) until other processes leave the CPUs alone."""
    deadline = time.monotonic() + max_wait_s
    while time.monotonic() < deadline:
        busy0, total0 = machine_cpu()
        time.sleep(1)
        busy1, total1 = machine_cpu()
        if total1 > total0 and (busy1 - busy0) / (total1 - total0) < QUIET_BUSY_SHARE:
            return
    print(f"  (machine still busy after {max_wait_s:g}s; measuring anyway)", flush=True)


def measure(wrk: str, public: ServiceProcess, pids: list[int], route: str, duration_s: int) -> Run:
    """One wrk run on a quiet machine, with CPU accounting."""
    assert public.process is not None
    wait_for_quiet()
    ticks = os.sysconf("SC_CLK_TCK")
    busy0, total0 = machine_cpu()
    ours0 = sum(process_cpu(pid) for pid in pids)
    public0 = process_cpu(public.process.pid)
    children0 = children_cpu()
    result = run_wrk(wrk, public.url + route, route, duration_s)
    busy1, total1 = machine_cpu()
    ours = sum(process_cpu(pid) for pid in pids) - ours0 + (children_cpu() - children0) * ticks
    public_s = (process_cpu(public.process.pid) - public0) / ticks
    return Run(
        wrk=result,
        public_cpu_us_per_request=public_s * 1e6 / max(result.requests, 1),
        unattributed_cpu_pct=max(0.0, 100 * (busy1 - busy0 - ours) / max(total1 - total0, 1)),
    )


def memory_mb(pid: int) -> dict[str, float]:
    """Resident memory now (VmRSS) and at its peak (VmHWM), in MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.MULTILINE))
    return {"rss_mb": int(fields["VmRSS"]) / 1024, "peak_rss_mb": int(fields["VmHWM"]) / 1024}


def get_text(url: str) -> str:
    """Body of a GET (urllib: the bench needs no client library)."""
    from urllib.request import urlopen

    with urlopen(url, timeout=5) as response:
        body: bytes = response.read()
    return body.decode()


@contextlib.contextmanager
def running_services(log_dir: Path) -> Iterator[dict[str, ServiceProcess]]:
    """backend-private twice and backend-public, ready; stopped on exit."""
    with MetadataServer() as metadata, contextlib.ExitStack() as stack:
        port = free_port("127.0.0.1", "127.0.0.2")
        services: dict[str, ServiceProcess] = {}
        for name, host in (("backend_private_a", "127.0.0.1"), ("backend_private_b", "127.0.0.2")):
            services[name] = ServiceProcess(
                "backend_private",
                host=host,
                port=port,
                env={"ECS_CONTAINER_METADATA_URI_V4": metadata.base_url(name.replace("_", "-"))},
                stdout=stack.enter_context(open(log_dir / f"{name}.log", "wb")),
            )
        services["backend_public"] = ServiceProcess(
            "backend_public",
            env={
                # a name, resolved (and cached) by the service, like a Cloud Map name
                "PRIVATE_DISCOVERY_URL": f"http://localhost:{port}",
                "PRIVATE_ALB_URL": f"http://127.0.0.2:{port}",
            },
            stdout=stack.enter_context(open(log_dir / "backend_public.log", "wb")),
        )
        try:
            for service in services.values():
                service.start()
            for service in services.values():
                service.wait_ready()
            yield services
        finally:
            for service in services.values():
                service.stop()


def benchmark(wrk: str, duration_s: int, repeat: int) -> dict[str, object]:
    """Run everything; return the report (see :func:`build_report`)."""
    with (
        tempfile.TemporaryDirectory(prefix="services-bench-") as tmp,
        running_services(Path(tmp)) as services,
    ):
        public = services["backend_public"]
        pids = [s.process.pid for s in services.values() if s.process is not None]
        answers = {route: get_text(public.url + route) for route in ROUTES}
        print("answers:", answers, flush=True)
        for route in ROUTES:  # warm up: connection pools, caches, allocator
            run_wrk(wrk, public.url + route, route, WARM_UP_S)
        runs: dict[str, list[Run]] = {route: [] for route in ROUTES}
        for _ in range(repeat):
            for route in ROUTES:
                run = measure(wrk, public, pids, route, duration_s)
                print(
                    f"  {route}: {run.wrk.requests_per_s:,.0f} req/s "
                    f"(unattributed CPU: {run.unattributed_cpu_pct:.0f}%)",
                    flush=True,
                )
                runs[route].append(run)
        memory = {
            name: memory_mb(service.process.pid)
            for name, service in services.items()
            if service.process is not None
        }
    return build_report(duration_s, answers, runs, memory)


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--repeat", type=int, default=1, help="runs per route; the best counts")
    parser.add_argument(
        "--out", type=Path, default=REPO / "docs" / "benchmarks-services.json", help="JSON file"
    )
    parser.add_argument(
        "--fragment",
        type=Path,
        default=REPO / "docs" / "benchmarks" / "services.md",
        help="Markdown section for docs/benchmarks.md (bench/run.py collects it)",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    wrk = find_wrk()
    report = benchmark(wrk, args.duration, max(args.repeat, 1))
    print_table(report)
    for path, text in ((args.out, json.dumps(report, indent=2)), (args.fragment, markdown(report))):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
        print(f"wrote {path}")
    return 1 if args.check and not report["targets_met"] else 0


def build_report(
    duration_s: int,
    answers: dict[str, str],
    runs: dict[str, list[Run]],
    memory: dict[str, dict[str, float]],
) -> dict[str, object]:
    """The JSON report: machine, best run per route, all runs, targets met or not."""
    best = {route: max(rs, key=lambda r: r.wrk.requests_per_s) for route, rs in runs.items()}
    met = {
        f"{route} >= {target:,.0f} req/s": best[route].wrk.requests_per_s >= target
        for route, target in TARGET_RPS.items()
    }
    met[f"RSS <= {TARGET_RSS_MB:g} MB per task"] = all(
        m["rss_mb"] <= TARGET_RSS_MB for m in memory.values()
    )
    met["no non-2xx responses or socket errors"] = all(
        r.wrk.non_2xx == 0 and r.wrk.socket_errors == 0 for rs in runs.values() for r in rs
    )
    return {
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "wrk": {"threads": THREADS, "connections": CONNECTIONS, "duration_s": duration_s},
        "answers": answers,
        "results": [_row(r) for r in best.values()],
        "all_runs": {route: [_row(r) for r in rs] for route, rs in runs.items()},
        "memory_mb": memory,
        "targets": met,
        "targets_met": all(met.values()),
    }


def _row(run: Run) -> dict[str, object]:
    return {
        **asdict(run.wrk),
        "public_cpu_us_per_request": round(run.public_cpu_us_per_request, 1),
        "unattributed_cpu_pct": round(run.unattributed_cpu_pct, 1),
    }


def print_table(report: dict[str, Any]) -> None:
    """A human-readable summary of :func:`build_report`'s output."""
    print(
        f"\n{'route':<24}{'req/s':>9}{'p50 ms':>8}{'p99 ms':>8}{'non-2xx':>8}{'errors':>7}"
        f"{'public CPU us/req':>19}{'unattr. CPU %':>14}"
    )
    for r in report["results"]:
        print(
            f"{r['route']:<24}{r['requests_per_s']:>9,.0f}{r['p50_ms']:>8.2f}{r['p99_ms']:>8.2f}"
            f"{r['non_2xx']:>8}{r['socket_errors']:>7}{r['public_cpu_us_per_request']:>19.1f}"
            f"{r['unattributed_cpu_pct']:>14.1f}"
        )
    print(f"\n{'process':<24}{'RSS MB':>9}{'peak MB':>9}")
    for name, m in report["memory_mb"].items():
        print(f"{name:<24}{m['rss_mb']:>9.1f}{m['peak_rss_mb']:>9.1f}")
    print()
    for target, ok in report["targets"].items():
        print(f"{'met   ' if ok else 'MISSED'} {target}")


def markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown section."""
    wrk = report["wrk"]
    lines = [
        "## The services",
        "",
        f"Each task answered directly (no load balancer): `wrk -t{wrk['threads']} "
        f"-c{wrk['connections']} -d{wrk['duration_s']}s` sharing the machine's "
        f"{report['machine']['cpus']} cores with the three task processes; "
        "`/api/private` is one discovery hop (a name, resolved by backend-public), "
        "`/api/private-with-alb` the same hop to an address. Written by "
        "`bench/services_bench.py`.",
        "",
        "| route | requests/s | p50 ms | p99 ms | non-2xx | backend-public CPU µs/request |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        lines.append(
            f"| `{r['route']}` | {r['requests_per_s']:,.0f} | {r['p50_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {r['non_2xx'] + r['socket_errors']} | "
            f"{r['public_cpu_us_per_request']:.0f} |"
        )
    lines += ["", "| task process | RSS MB | peak RSS MB |", "|---|---:|---:|"]
    for name, m in report["memory_mb"].items():
        lines.append(f"| {name} | {m['rss_mb']:.1f} | {m['peak_rss_mb']:.1f} |")
    lines.append("")
    for target, ok in report["targets"].items():
        lines.append(f"- {'met' if ok else '**missed**'}: {target}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
