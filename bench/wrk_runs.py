"""wrk runs against a service, with the CPU accounting that makes them comparable.

    wrk = find_wrk()
    run = measure(wrk, public_url, public_pid, pids, "/api/public", duration_s=10)
    run.wrk.requests_per_s, run.wrk.p99_ms, run.public_cpu_us_per_request

``measure`` first waits (a while) for the machine to be quiet, then runs
``wrk -t1 -c50 -d<duration>s --latency`` and charges the CPU time of the
service processes and of wrk; what is left over shows how busy the machine was
with other work during the run.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

CONNECTIONS = 50
THREADS = 1
WARM_UP_S = 2
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


def measure(
    wrk: str, base_url: str, public_pid: int, pids: list[int], route: str, duration_s: int
) -> Run:
    """One wrk run at ``base_url + route`` on a quiet machine, with CPU accounting.

    ``public_pid`` is the process that answers (backend-public), ``pids`` every
    process the request touches (its callees too).
    """
    wait_for_quiet()
    ticks = os.sysconf("SC_CLK_TCK")
    busy0, total0 = machine_cpu()
    ours0 = sum(process_cpu(pid) for pid in pids)
    public0 = process_cpu(public_pid)
    children0 = children_cpu()
    result = run_wrk(wrk, base_url + route, route, duration_s)
    busy1, total1 = machine_cpu()
    ours = sum(process_cpu(pid) for pid in pids) - ours0 + (children_cpu() - children0) * ticks
    public_s = (process_cpu(public_pid) - public0) / ticks
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
