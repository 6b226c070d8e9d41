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
  where the CPU went (Caddy, the tasks, the control plane, wrk, irq time), and, for
  comparison, Caddy alone (the port-80 listener answering its HTTPS redirect itself);
- in loopback mode, the same routes on the backend-public task directly (what the load
  balancer costs);
- after the last round, in each mode: a task SIGKILLed under load and a rolling
  deployment under load (failed requests: non-2xx + socket errors, target zero; the
  tasks' access logs tell which answers failed).

Every twin gets its own state folder under a temporary folder and free host ports for
its public listeners (never 8443/8080: a developer's twin may run there), and is
stopped with ``fargo down`` also when something fails. wrk only ever targets loopback
addresses. Writes ``docs/benchmarks/twin.md``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import ipaddress
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import yaml
from twin_report import CADDY_ALONE, MODES, ROUTES, Results, render

ROOT = Path(__file__).resolve().parent.parent
FARGO = [sys.executable, "-m", "fargo.cli"]
DIRECT_ROUTES = ("/api/public", "/api/private")
RESERVED_PORTS = {8443, 8080}  # a developer's twin may serve these
QUIET_WAIT_S = 30.0
QUIET_BUSY_SHARE = 0.15
UP_TIMEOUT_S = 120.0
LATE_ANSWERS_S = 6.0


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
    started = time.monotonic()
    thread.start()
    time.sleep(seconds / 3)
    try:
        result["action"] = action()
        # When the action ended (e.g. `fargo update-service` returns once the deployment is
        # complete): what it broke must show while wrk still runs.
        result["action_done_at_s"] = round(time.monotonic() - started, 1)
    finally:
        thread.join()
    if failure:
        raise failure[0]
    return result


# --- where the CPU goes ----------------------------------------------------------------


def proc_stat() -> list[int]:
    """The machine's CPU time so far, in clock ticks: user nice system idle iowait irq
    softirq steal."""
    with open("/proc/stat") as stat:
        return [int(n) for n in stat.readline().split()[1:9]]


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU time of the whole machine so far, in clock ticks."""
    fields = proc_stat()
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


def cpu_of(pids: list[int]) -> tuple[float, float]:
    """(user + system, system) CPU seconds of these processes so far."""
    total = system = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
            system += times.system
    return total, system


@dataclass
class CpuGroups:
    """The twin's processes by role, to charge a wrk run's CPU time to them."""

    roles: dict[str, list[int]]

    @classmethod
    def of(cls, data: dict[str, Any]) -> CpuGroups:
        planes = [p["pid"] for p in data["load_balancers"]["data_planes"] if p.get("pid")]
        public: list[int] = []
        callees: list[int] = []
        for service in data["services"]:
            pids = [t["pid"] for t in service["tasks"] if t.get("pid")]
            (public if service["name"] == "backend-public" else callees).extend(pids)
        roles = {"caddy": planes, "backend-public": public, "callees": callees}
        return cls({**roles, "control": [data["pid"]]})

    def snapshot(self) -> dict[str, tuple[float, float]]:
        ticks = os.sysconf("SC_CLK_TCK")
        shot = {role: cpu_of(pids) for role, pids in self.roles.items()}
        children = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk, once it has exited
        shot["wrk"] = (children.ru_utime + children.ru_stime, children.ru_stime)
        stat = proc_stat()
        shot["irq"] = ((stat[5] + stat[6]) / ticks, (stat[5] + stat[6]) / ticks)
        busy, total = machine_ticks()
        shot["machine"] = (busy / ticks, total / ticks)
        shot["steal"] = (stat[7] / ticks, 0.0)
        return shot


def measure(url: str, seconds: int, groups: CpuGroups) -> dict[str, Any]:
    """One wrk run on a (reasonably) quiet machine, with the CPU each part used per request."""
    wait_for_quiet()
    before = groups.snapshot()
    result = wrk(url, seconds)
    after = groups.snapshot()
    per_request = 1e6 / max(result["requests"], 1)
    cpu: dict[str, dict[str, float]] = {}
    for role in (*groups.roles, "wrk", "irq"):
        spent = after[role][0] - before[role][0]
        spent_sys = after[role][1] - before[role][1]
        cpu[role] = {
            "us": round(spent * per_request, 1),
            "sys_us": round(spent_sys * per_request, 1),
        }
    result["cpu"] = cpu
    busy = after["machine"][0] - before["machine"][0]
    total = after["machine"][1] - before["machine"][1]
    ours = sum(v["us"] for v in cpu.values()) / per_request
    steal = after["steal"][0] - before["steal"][0]
    result["other_busy_pct"] = round(max(0.0, 100 * (busy - steal - ours) / max(total, 1e-9)), 1)
    result["steal_pct"] = round(100 * steal / max(total, 1e-9), 1)
    return result


def access_log_answers(state_dir: Path, since: float, until: float) -> list[tuple[str, int]]:
    """The tasks' non-2xx/3xx answers between two times, from their access logs (JSON
    lines with time, status, duration_ms), counted by service, status and duration."""
    counts: collections.Counter[tuple[str, int, float]] = collections.Counter()
    for log in sorted((state_dir / "logs").glob("*/*.log")):
        with contextlib.suppress(OSError), log.open(errors="replace") as lines:
            for line in lines:
                if not line.startswith("{"):
                    continue
                try:
                    entry = json.loads(line)
                    status, at = int(entry["status"]), float(entry["time"])
                except (ValueError, KeyError, TypeError):
                    continue
                if status >= 400 and since <= at <= until:
                    seconds = round(float(entry.get("duration_ms", 0)) / 1000, 1)
                    counts[(log.parent.name, status, seconds)] += 1
    return [
        (f"{service} answered {count} × {status} after {seconds:g} s", count)
        for (service, status, seconds), count in counts.most_common()
    ]


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

    @property
    def http(self) -> str:
        urls: dict[str, list[str]] = self.data["endpoints"]["load_balancers"]
        return next(u for listeners in urls.values() for u in listeners if u.startswith("http:"))

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

    def killer(self, service: str) -> Callable[[], str]:
        """SIGKILL for one task of ``service``, picked now (from `fargo status --json`), so
        that firing it under load costs no CLI call."""
        victim = self.tasks(service)[0]

        def kill() -> str:
            os.kill(victim["pid"], signal.SIGKILL)
            return f"SIGKILL task {victim['id'][:8]} of {service} (pid {victim['pid']})"

        return kill

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


def one_round(twin: Twin, results: Results, duration: int, last: bool) -> None:
    """Throughput through the public listener (and, loopback, on the task); churn when last."""
    mode = twin.mode
    groups = CpuGroups.of(twin.data)
    targets = [(route, twin.https + route) for route in ROUTES]
    targets.append((CADDY_ALONE, twin.http + "/"))
    for route, url in targets:
        wrk(url, 2)  # warm-up: TLS sessions, upstream pools, caches
        row = measure(url, duration, groups)
        results.alb.setdefault(mode, {}).setdefault(route, []).append(row)
        print(
            f"    {mode} {route}: {row['requests_per_second']:,.0f} req/s, "
            f"p99 {row.get('p99_ms')} ms, failed {row['failed']}",
            flush=True,
        )
    if mode == "loopback":
        address = task_of(twin.data, "backend-public")[0]["address"]
        for route in DIRECT_ROUTES:
            row = measure(f"http://{address}{route}", duration, groups)
            results.direct.setdefault(route, []).append(row)
    if last:
        churn(twin, results, duration)


def churn(twin: Twin, results: Results, duration: int) -> None:
    """A task SIGKILLed under load, and a rolling deployment under load."""
    # (name, route, seconds of load, the action to fire a third of the way in, made
    # just before the load starts)
    cases: list[tuple[str, str, int, Callable[[], Callable[[], str]]]] = [
        (
            "task killed under load",
            "/api/private",
            duration,
            lambda: twin.killer("backend-private"),
        ),
        (
            "task killed under load",
            "/api/private-with-alb",
            duration,
            lambda: twin.killer("backend-private-with-alb"),
        ),
        (
            "rolling deployment under load",
            "/api/private-with-alb",
            duration * 3,
            lambda: lambda: twin.deploy("backend-private-with-alb"),
        ),
    ]
    for name, route, seconds, make_action in cases:
        try:
            twin.wait_ready()
            wait_for_quiet()
            action = make_action()
            since = time.time()
            row = under_load(twin.https + route, seconds, action)
            # Requests still open when wrk stops are not in its count: the tasks' access
            # logs are, once the slowest of them timed out (5 s downstream read timeout).
            until = time.time()
            time.sleep(LATE_ANSWERS_S)
            answers = access_log_answers(twin.state_dir, since, until + LATE_ANSWERS_S)
            row["answers"] = [text for text, _ in answers]
            row["log_non_2xx"] = sum(count for _, count in answers)
        except (TwinFailed, subprocess.SubprocessError, ValueError) as error:
            results.error(twin.mode, f"{name} ({route})", error)
            continue
        results.churn.setdefault(twin.mode, {})[f"{name} ({route})"] = row
        print(
            f"    {twin.mode} {name} ({route}): {row['action']} (done at "
            f"{row['action_done_at_s']} s of {seconds} s); wrk: {row['failed']} failed; "
            f"access logs: {row['answers'] or 'no error answers'}",
            flush=True,
        )


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
                            f"    up in {twin.up_wall_s:.2f} s "
                            f"(ready after {twin.ready_after_s} s)",
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


if __name__ == "__main__":
    raise SystemExit(main())
