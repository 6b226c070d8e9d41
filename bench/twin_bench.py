"""Benchmarks of the local twin, loopback mode against VPC mode in the same run.

    python bench/twin_bench.py [--duration 10] [--rounds 3] [--spec fargo.yaml]

Measures, for the reference system, in both network modes (``--network loopback`` and
``--network vpc``), the modes interleaved round by round (loopback, vpc, loopback, vpc,
…) so that noise on the machine hits both:

- ``fargo up --detach`` until every target is healthy: the command's wall time and the
  twin's own ``ready_after_seconds`` (target ≤ 3 s), median of ``--rounds`` starts;
- ``/api/public``, ``/api/private`` and ``/api/private-with-alb`` through the public
  HTTPS listener (wrk, 1 thread, 50 connections): requests/s and p99, median of the
  rounds, VPC mode's requests/s as a share of loopback mode's (target ≥ 80 %), and
  where the CPU went (Caddy, the tasks, wrk, the rest of the machine);
- in loopback mode, the same routes on the backend-public task directly (what the load
  balancer costs);
- after the last round, in each mode: a task SIGKILLed under load and a rolling
  deployment under load (failed requests: non-2xx + socket errors, target zero).

Every twin gets its own state folder under a temporary folder and free host ports for
its public listeners (never 8443/8080: a developer's twin may run there), and is
stopped with ``fargo down`` also when something fails. wrk only ever targets loopback
addresses. Writes ``docs/benchmarks/twin.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import yaml

ROOT = Path(__file__).resolve().parent.parent
FARGO = [sys.executable, "-m", "fargo.cli"]
MODES = ("loopback", "vpc")
ROUTES = ("/api/public", "/api/private", "/api/private-with-alb")
DIRECT_ROUTES = ("/api/public", "/api/private")
RESERVED_PORTS = {8443, 8080}  # a developer's twin may serve these
UP_TARGET_S = 3.0
RATIO_TARGET_PCT = 80.0
QUIET_WAIT_S = 30.0
QUIET_BUSY_SHARE = 0.15
UP_TIMEOUT_S = 120.0


class TwinFailed(RuntimeError):
    """A fargo command failed; the message is its output, exactly."""


def fargo(
    *args: str, check: bool = True, timeout: float = UP_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [*FARGO, *args], cwd=ROOT, text=True, capture_output=True, check=False, timeout=timeout
    )
    if check and done.returncode:
        raise TwinFailed(
            f"`fargo {' '.join(args)}` exited with {done.returncode}:\n"
            f"{done.stdout}{done.stderr}".rstrip()
        )
    return done


# --- wrk -------------------------------------------------------------------------------


def wrk(url: str, seconds: int) -> dict[str, Any]:
    """Run wrk (1 thread, 50 connections) and parse requests/s, latency and errors."""
    host = urlsplit(url).hostname or ""
    if not ipaddress.ip_address(host).is_loopback:  # network safety: loopback only
        raise ValueError(f"refusing to load {url}: not a loopback address")
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


def under_load(url: str, seconds: int, action: Callable[[], str]) -> dict[str, Any]:
    """Run wrk for ``seconds`` and fire ``action`` a third of the way in."""
    result: dict[str, Any] = {}
    failure: list[BaseException] = []

    def load() -> None:
        try:
            result.update(wrk(url, seconds))
        except (subprocess.CalledProcessError, ValueError) as error:
            failure.append(error)

    thread = threading.Thread(target=load)
    thread.start()
    time.sleep(seconds / 3)
    try:
        result["action"] = action()
    finally:
        thread.join()
    if failure:
        raise failure[0]
    return result


# --- where the CPU goes ----------------------------------------------------------------


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU time of the whole machine so far, in clock ticks."""
    with open("/proc/stat") as stat:
        fields = [int(n) for n in stat.readline().split()[1:9]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def wait_for_quiet(max_wait_s: float = QUIET_WAIT_S) -> None:
    """Wait (a while) until the CPUs are mostly idle: a measurement starts on a calm machine."""
    deadline = time.monotonic() + max_wait_s
    while time.monotonic() < deadline:
        busy0, total0 = machine_ticks()
        time.sleep(1)
        busy1, total1 = machine_ticks()
        if total1 > total0 and (busy1 - busy0) / (total1 - total0) < QUIET_BUSY_SHARE:
            return
    print(f"    (machine still busy after {max_wait_s:g} s; measuring anyway)", flush=True)


def tree_cpu(pids: list[int]) -> tuple[float, float]:
    """(user, system) CPU seconds of these processes and their descendants."""
    user = system = 0.0
    seen: set[int] = set()
    for pid in pids:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for proc in procs:
            if proc.pid in seen:
                continue
            seen.add(proc.pid)
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                user += times.user
                system += times.system
    return user, system


def wrk_cpu() -> float:
    """CPU seconds of this process's finished children (wrk, fargo commands)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class CpuGroups:
    """The twin's processes by role, for charging CPU time to them during a wrk run."""

    caddy: list[int]
    tasks: list[int]
    control: int

    @classmethod
    def of(cls, data: dict[str, Any]) -> CpuGroups:
        planes = data["load_balancers"]["data_planes"]
        tasks = [t["pid"] for s in data["services"] for t in s["tasks"] if t.get("pid")]
        return cls(
            caddy=[p["pid"] for p in planes if p.get("pid")], tasks=tasks, control=data["pid"]
        )

    def snapshot(self) -> dict[str, float]:
        caddy_user, caddy_sys = tree_cpu(self.caddy)
        tasks_user, tasks_sys = tree_cpu(self.tasks)
        all_user, all_sys = tree_cpu([self.control, *self.caddy, *self.tasks])
        busy, total = machine_ticks()
        ticks = os.sysconf("SC_CLK_TCK")
        return {
            "caddy": caddy_user + caddy_sys,
            "caddy_sys": caddy_sys,
            "tasks": tasks_user + tasks_sys,
            "tasks_sys": tasks_sys,
            "twin": all_user + all_sys,
            "wrk": wrk_cpu(),
            "machine_busy": busy / ticks,
            "machine_total": total / ticks,
        }


def measure(url: str, seconds: int, groups: CpuGroups) -> dict[str, Any]:
    """One wrk run on a (reasonably) quiet machine, with the CPU each part used per request."""
    wait_for_quiet()
    before = groups.snapshot()
    result = wrk(url, seconds)
    after = groups.snapshot()
    spent = {key: after[key] - before[key] for key in before}
    per_request = 1e6 / max(result["requests"], 1)
    for key in ("caddy", "caddy_sys", "tasks", "tasks_sys", "wrk"):
        result[f"{key}_us_per_request"] = round(spent[key] * per_request, 1)
    others = spent["machine_busy"] - spent["twin"] - spent["wrk"]
    result["other_busy_pct"] = round(max(0.0, 100 * others / max(spent["machine_total"], 1e-9)), 1)
    return result


# --- twins -----------------------------------------------------------------------------


def free_port() -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in RESERVED_PORTS:
            return port


@dataclass
class Twin:
    """One twin started with ``fargo up --detach`` in its own state folder."""

    mode: str
    spec: Path
    state_dir: Path
    up_wall_s: float = 0.0
    ready_after_s: float | None = None
    status_call_s: float = 0.0  # one `fargo status --json`: what a CLI start costs
    data: dict[str, Any] = field(default_factory=dict)

    def up(self) -> None:
        ports = [f"443:{free_port()}", f"80:{free_port()}"]
        publish = [arg for port in ports for arg in ("--publish", port)]
        args = ["up", "--detach", "-f", str(self.spec), "--state-dir", str(self.state_dir)]
        started = time.perf_counter()
        fargo(*args, "--network", self.mode, *publish)
        self.up_wall_s = time.perf_counter() - started
        started = time.perf_counter()
        self.data = self.status()
        self.status_call_s = time.perf_counter() - started
        if self.data["network_mode"] != self.mode:
            raise TwinFailed(
                f"asked for {self.mode} mode, the twin runs {self.data['network_mode']}"
            )
        self.ready_after_s = self.data["ready_after_seconds"]

    def down(self) -> None:
        done = fargo("down", "--state-dir", str(self.state_dir), check=False)
        if done.returncode:
            print(f"    fargo down failed:\n{done.stdout}{done.stderr}", file=sys.stderr)

    def status(self) -> dict[str, Any]:
        done = fargo("status", "--json", "--state-dir", str(self.state_dir))
        return json.loads(done.stdout)  # type: ignore[no-any-return]

    @property
    def https(self) -> str:
        urls: dict[str, list[str]] = self.data["endpoints"]["load_balancers"]
        return next(u for listeners in urls.values() for u in listeners if u.startswith("https"))

    def tasks(self, service: str) -> list[dict[str, Any]]:
        return task_of(self.status(), service)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = self.status()
            if data["readiness"]["ready"] and all(
                t["last_status"] == "RUNNING" for s in data["services"] for t in s["tasks"]
            ):
                self.data = data
                return
            time.sleep(0.5)
        raise TwinFailed(f"not ready again after {timeout:g} s: {self.status()['readiness']}")

    def kill_one(self, service: str) -> str:
        victim = self.tasks(service)[0]
        os.kill(victim["pid"], signal.SIGKILL)
        return f"SIGKILL task {victim['id'][:8]} of {service} (pid {victim['pid']})"

    def deploy(self, service: str) -> str:
        fargo("update-service", service, "--state-dir", str(self.state_dir))
        return f"rolling deployment of {service}"


def task_of(data: dict[str, Any], service: str) -> list[dict[str, Any]]:
    return next(s["tasks"] for s in data["services"] if s["name"] == service)


@contextlib.contextmanager
def running(mode: str, spec: Path, workdir: Path, label: str) -> Iterator[Twin]:
    """A twin up for the block; ``fargo down`` afterwards whatever happens."""
    twin = Twin(mode, spec, workdir / f"{label}-{mode}")
    try:
        twin.up()
        yield twin
    finally:
        twin.down()


def bench_spec(spec: Path, workdir: Path) -> tuple[Path, str | None]:
    """The spec to run: ``spec`` itself, or, when another twin on this machine holds an
    overlapping VPC (a twin refuses to start then), a copy renumbered into a free /16."""
    from fargo.local.twins import running_twins  # the twin's own registry of running twins

    raw = yaml.safe_load(spec.read_text())
    cidr = ipaddress.IPv4Network(raw["network"]["cidr"])
    taken = [ipaddress.IPv4Network(t.cidr) for t in running_twins()]
    if not any(cidr.overlaps(other) for other in taken):
        return spec, None
    free = next(
        net
        for second in range(250, 100, -1)
        if not any((net := ipaddress.IPv4Network(f"10.{second}.0.0/16")).overlaps(o) for o in taken)
    )
    # (a new VPC of the same size would do; the reference system's /16 fits anyway)

    def move(subnet: str) -> str:
        old = ipaddress.IPv4Network(subnet)
        offset = int(old.network_address) - int(cidr.network_address)
        return str(ipaddress.IPv4Network((int(free.network_address) + offset, old.prefixlen)))

    raw["network"]["cidr"] = str(free)
    for tier, subnets in raw["network"]["subnets"].items():
        raw["network"]["subnets"][tier] = [move(s) for s in subnets]
    for image in raw.get("images", {}).values():
        image["context"] = str((spec.parent / image.get("context", "services")).resolve())
    copy = workdir / spec.name
    copy.write_text(yaml.safe_dump(raw, sort_keys=False))
    note = (
        f"another twin on this machine held {cidr}, so the run used a copy of {spec.name} "
        f"with network.cidr {free} (subnets moved along; nothing else changed)"
    )
    return copy, note


# --- the run ---------------------------------------------------------------------------


@dataclass
class Results:
    duration: int
    rounds: int
    spec: str
    spec_note: str | None = None
    starts: dict[str, list[dict[str, float | None]]] = field(default_factory=dict)
    alb: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    direct: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    churn: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)

    def error(self, mode: str, what: str, error: BaseException) -> None:
        text = f"{what}: {error}"
        if isinstance(error, subprocess.CalledProcessError):
            text += f"\n{error.stdout or ''}{error.stderr or ''}"
        print(f"    FAILED {text}", file=sys.stderr, flush=True)
        self.errors.setdefault(mode, []).append(text.rstrip())


def one_round(twin: Twin, results: Results, duration: int, last: bool) -> None:
    """Throughput through the public listener (and, loopback, on the task); churn when last."""
    mode = twin.mode
    groups = CpuGroups.of(twin.data)
    https = twin.https
    for route in ROUTES:
        wrk(https + route, 2)  # warm-up: TLS sessions, upstream pools, caches
        row = measure(https + route, duration, groups)
        results.alb.setdefault(mode, {}).setdefault(route, []).append(row)
        print(
            f"    {mode} alb {route}: {row['requests_per_second']:,.0f} req/s, "
            f"p99 {row.get('p99_ms')} ms, failed {row['failed']}",
            flush=True,
        )
    if mode == "loopback":
        address = task_of(twin.data, "backend-public")[0]["address"]
        for route in DIRECT_ROUTES:
            row = measure(f"http://{address}{route}", duration, groups)
            results.direct.setdefault(route, []).append(row)
    if not last:
        return
    churn = results.churn.setdefault(mode, {})
    cases: list[tuple[str, str, int, Callable[[], str]]] = [
        (
            "task killed under load",
            "/api/private",
            duration,
            lambda: twin.kill_one("backend-private"),
        ),
        (
            "task killed under load",
            "/api/private-with-alb",
            duration,
            lambda: twin.kill_one("backend-private-with-alb"),
        ),
        (
            "rolling deployment under load",
            "/api/private-with-alb",
            duration * 2,
            lambda: twin.deploy("backend-private-with-alb"),
        ),
    ]
    for name, route, seconds, action in cases:
        try:
            twin.wait_ready()
            wait_for_quiet()
            row = under_load(https + route, seconds, action)
        except (TwinFailed, subprocess.SubprocessError, ValueError) as error:
            results.error(mode, f"{name} ({route})", error)
            continue
        churn[f"{name} ({route})"] = row
        print(f"    {mode} {name} ({route}): {row['action']}; failed {row['failed']}", flush=True)


def run(args: argparse.Namespace) -> Results:
    workdir = Path(tempfile.mkdtemp(prefix="fargo-twin-bench-"))
    spec, note = bench_spec((ROOT / args.spec).resolve(), workdir)
    results = Results(args.duration, args.rounds, str(args.spec), note)
    if note:
        print(f"note: {note}", flush=True)
    try:
        for index in range(args.rounds):
            last = index == args.rounds - 1
            for mode in args.modes:
                print(f"  round {index + 1}, {mode} mode", flush=True)
                try:
                    with running(mode, spec, workdir, f"round{index + 1}") as twin:
                        results.starts.setdefault(mode, []).append(
                            {
                                "wall_s": twin.up_wall_s,
                                "ready_after_s": twin.ready_after_s,
                                "status_call_s": twin.status_call_s,
                            }
                        )
                        print(
                            f"    up in {twin.up_wall_s:.2f} s (ready after "
                            f"{twin.ready_after_s:.2f} s)",
                            flush=True,
                        )
                        one_round(twin, results, args.duration, last)
                except (TwinFailed, subprocess.SubprocessError, ValueError) as error:
                    results.error(mode, f"round {index + 1}", error)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument(
        "--rounds", type=int, default=3, help="starts (and throughput runs) per mode"
    )
    parser.add_argument("--spec", default="fargo.yaml")
    parser.add_argument("--modes", type=lambda s: s.split(","), default=list(MODES))
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "twin.md")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print(
            "error: wrk not found on PATH; install it first: apt-get install wrk", file=sys.stderr
        )
        return 2
    results = run(args)
    text = render(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    if args.json:
        args.json.write_text(json.dumps(results.__dict__, indent=2))
    print(text)
    return 1 if results.errors else 0


# --- the report ------------------------------------------------------------------------

DETAILS_MARKER = "<!-- details: docs/benchmarks/twin.md -->"
CHURN = (
    "task killed under load (/api/private)",
    "task killed under load (/api/private-with-alb)",
    "rolling deployment under load (/api/private-with-alb)",
)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def verdict(met: bool, miss: str) -> str:
    return "met" if met else f"**missed** ({miss})"


def start_medians(results: Results, mode: str) -> dict[str, float] | None:
    starts = results.starts.get(mode, [])
    if not starts:
        return None
    return {
        key: median([float(s[key] or 0.0) for s in starts])
        for key in ("wall_s", "ready_after_s", "status_call_s")
    }


def alb_median(results: Results, mode: str, route: str, key: str) -> float | None:
    rows = results.alb.get(mode, {}).get(route, [])
    return median([float(r.get(key, float("nan"))) for r in rows]) if rows else None


def render(results: Results) -> str:
    """The fragment for docs/benchmarks.md (summary, then details below the marker)."""
    lines = [
        "## The local twin: loopback mode and VPC mode",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d} by `bench/twin_bench.py`: the reference "
        f"system (`{results.spec}`) in both network modes in one run, {results.rounds} rounds "
        "with the modes interleaved (loopback, vpc, loopback, vpc, …); each round starts a "
        "fresh twin per mode (its own state folder, free host ports), measures it and stops "
        f"it. Medians of the rounds. wrk `-t1 -c50 -d{results.duration}s` against the public "
        "HTTPS listener on 127.0.0.1. Rerun: `make bench` or "
        "`.venv/bin/python bench/run.py --only twin`.",
        "",
    ]
    if results.spec_note:
        lines += [f"Note: {results.spec_note}.", ""]
    lines += [
        "| | loopback | VPC | target |",
        "|---|---:|---:|---|",
    ]
    starts = {mode: start_medians(results, mode) for mode in MODES}
    for key, label in (
        ("wall_s", "`fargo up --detach`, wall time"),
        ("ready_after_s", "`fargo up --detach`, `ready_after_seconds`"),
    ):
        cells, verdicts = [], []
        for mode in MODES:
            got = starts[mode]
            if got is None:
                cells.append("did not start")
                verdicts.append(f"{mode} **missed**")
                continue
            cells.append(f"{got[key]:.2f} s")
            over = got[key] - UP_TARGET_S
            verdicts.append(f"{mode} {verdict(over <= 0, f'by {over:.2f} s')}")
        lines.append(
            f"| {label} | {' | '.join(cells)} | ≤ {UP_TARGET_S:g} s: {'; '.join(verdicts)} |"
        )
    for route in ROUTES:
        cells = []
        rps: dict[str, float] = {}
        for mode in MODES:
            value = alb_median(results, mode, route, "requests_per_second")
            p99 = alb_median(results, mode, route, "p99_ms") or float("nan")
            if value is None:
                cells.append("–")
            else:
                rps[mode] = value
                cells.append(f"{value:,.0f} (p99 {p99:.1f} ms)")
        if len(rps) == 2:
            pct = 100 * rps["vpc"] / rps["loopback"]
            met = verdict(pct >= RATIO_TARGET_PCT, f"by {RATIO_TARGET_PCT - pct:.0f} points")
            target = f"VPC ≥ {RATIO_TARGET_PCT:g} %: {pct:.0f} %, {met}"
        else:
            target = "not measured"
        lines.append(f"| `{route}` through the ALB, requests/s | {' | '.join(cells)} | {target} |")
    for name in CHURN:
        cells, failed = [], []
        for mode in MODES:
            row = results.churn.get(mode, {}).get(name)
            cells.append("–" if row is None else f"{row['failed']} failed")
            if row is not None:
                failed.append(row["failed"])
        target = "not measured" if not failed else verdict(sum(failed) == 0, "not 0")
        lines.append(f"| {name} | {' | '.join(cells)} | 0 failed: {target} |")
    lines += ["", *cost_lines(results)]
    if results.errors:
        lines += ["", "Errors (the twin's own output):", ""]
        for mode, errors in results.errors.items():
            for error in errors:
                lines += [f"{mode} mode:", "", "```text", error, "```", ""]
    lines += [
        "",
        "Every run, and where the CPU went: docs/benchmarks/twin.md.",
        "",
        DETAILS_MARKER,
    ]
    lines += details(results)
    return "\n".join(lines) + "\n"


def cost_lines(results: Results) -> list[str]:
    """Where VPC mode's extra time goes, per route: CPU per request, VPC minus loopback."""
    out = []
    parts = (
        ("caddy_us_per_request", "Caddy"),
        ("caddy_sys_us_per_request", "of which kernel"),
        ("tasks_us_per_request", "tasks"),
        ("wrk_us_per_request", "wrk"),
    )
    for route in ROUTES:
        values = {
            mode: {key: alb_median(results, mode, route, key) for key, _ in parts} for mode in MODES
        }
        if any(v is None for mode in MODES for v in values[mode].values()):
            continue
        cells = []
        for key, label in parts:
            loop, vpc = values["loopback"][key], values["vpc"][key]
            assert loop is not None and vpc is not None
            cells.append(f"{label} {loop:.0f} → {vpc:.0f}")
        out.append(f"- `{route}`, CPU µs per request, loopback → VPC: {', '.join(cells)}.")
    if out:
        out.insert(0, "Where the CPU goes (medians; the twin's processes charged per request):")
        out.insert(1, "")
    return out


RUN_HEADER = (
    "| route | mode | round | req/s | p50 ms | p99 ms | failed | Caddy µs (sys) "
    "| tasks µs (sys) | wrk µs | other busy |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
)


def run_row(route: str, mode: str, index: int, row: dict[str, Any]) -> str:
    return (
        f"| {route} | {mode} | {index} | {row['requests_per_second']:,.0f} | "
        f"{row.get('p50_ms', '')} | {row.get('p99_ms', '')} | {row['failed']} | "
        f"{row['caddy_us_per_request']:.0f} ({row['caddy_sys_us_per_request']:.0f}) | "
        f"{row['tasks_us_per_request']:.0f} ({row['tasks_sys_us_per_request']:.0f}) | "
        f"{row['wrk_us_per_request']:.0f} | {row['other_busy_pct']:.0f} % |"
    )


def details(results: Results) -> list[str]:
    lines = [
        "",
        "### Details",
        "",
        "Starts (`fargo up --detach` wall time / the twin's `ready_after_seconds`, from the "
        "control plane's start until every service was first ready; the difference is mostly "
        "two Python interpreters starting and importing fargo, the CLI's and the control "
        "plane's — one `fargo status --json` call shows what a CLI start costs):",
        "",
        "| mode | round | wall s | ready_after s | a `fargo status --json` s |",
        "|---|---:|---:|---:|---:|",
    ]
    for mode in MODES:
        for index, start in enumerate(results.starts.get(mode, []), 1):
            lines.append(
                f"| {mode} | {index} | {start['wall_s'] or 0:.2f} | "
                f"{start['ready_after_s'] or 0:.2f} | {start['status_call_s'] or 0:.2f} |"
            )
    lines += [
        "",
        "Through the public HTTPS listener, every run. CPU µs per request charged to Caddy "
        "(loopback mode: one Caddy for both load balancers; VPC mode: one per load balancer, in "
        "its ENI) and to the task processes, `sys` the kernel part (in VPC mode it includes "
        "the veth pairs, the VPC router's forwarding and the nftables security groups the "
        "packets cross, as far as the kernel bills them to the process); `other busy`: the "
        "machine's CPU used outside the twin and wrk during the run — other processes (noise) "
        "and kernel work billed to nobody:",
        "",
        *RUN_HEADER,
    ]
    for route in ROUTES:
        for mode in MODES:
            for index, row in enumerate(results.alb.get(mode, {}).get(route, []), 1):
                lines.append(run_row(f"`{route}`", mode, index, row))
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
        "`fargo update-service` starts a rolling deployment; failed = non-2xx responses + "
        "socket errors:",
        "",
        "| mode | what | action | requests/s | p99 ms | failed |",
        "|---|---|---|---:|---:|---:|",
    ]
    for mode in MODES:
        for name, row in results.churn.get(mode, {}).items():
            lines.append(
                f"| {mode} | {name} | {row['action']} | {row['requests_per_second']:,.0f} | "
                f"{row.get('p99_ms', '')} | {row['failed']} |"
            )
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
