"""The data plane while the control plane is away (issue 11): requests through the public
listener during 30 s of a SIGKILLed control plane, and during the `fargo up` that follows.
Writes docs/benchmarks/control_plane_away.md.

python bench/control_plane_away_bench.py [--seconds 30] [--threads 4] [--after 65]
                                         [--network loopback,vpc]

The reference system (`fargo.yaml`, on a VPC CIDR of its own) runs in each network mode
(VPC mode where this machine has it) in a temporary state folder on free ports. Load:
``threads`` clients each sending one request after another through the public HTTPS
listener, half to `/api/public` (one hop) and half to `/api/private` (a discovery lookup
by backend-public, then a second hop). The load goes on for ``--after`` seconds after
`fargo up` returned: in loopback mode the new control plane stops the crashed run's
tasks after the longest discovery TTL (60 s in the reference system); in VPC mode it
stops the old VPC once its own Caddys have the listeners.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dns.exception
import dns.message
import dns.query
import httpx
import psutil

from fargo.local.ec2.vpc_mode import vpc_mode_unavailable
from fargo.local.state import folder as state

ROOT = Path(__file__).resolve().parent.parent
FRAGMENT = ROOT / "docs" / "benchmarks" / "control_plane_away.md"
FARGO = [sys.executable, "-m", "fargo.cli"]
ROUTES = ("/api/public", "/api/private")
DISCOVERY_NAME = "private.backend.microservice.local."
NOTES = "Notes (not written by the bench):"


def fargo(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [*FARGO, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"fargo {' '.join(args)}: {done.stdout}{done.stderr}")
    return done


def own_network(folder: Path) -> Path:
    """The reference spec on a VPC of its own (10.62.0.0/16), so it runs beside a developer's
    (or another test's) twin of it; its services are linked in."""
    (folder / "services").symlink_to(ROOT / "services")
    spec = folder / "fargo.yaml"
    spec.write_text((ROOT / "fargo.yaml").read_text().replace("10.0.", "10.62."))
    return spec


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Load:
    """Requests in ``threads`` threads; outcomes counted per phase (`phase` switches)."""

    def __init__(self, url: str, ca: str, threads: int) -> None:
        self.url = url
        self.ca = ca
        self.phase = "before"
        self.seen: dict[str, collections.Counter[str]] = collections.defaultdict(
            collections.Counter
        )
        self.slowest: dict[str, float] = collections.defaultdict(float)
        self.failures: list[tuple[float, str]] = []  # (monotonic time, outcome)
        self._done = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(ROUTES[i % len(ROUTES)],))
            for i in range(threads)
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        for thread in self._threads:
            thread.join()

    def _run(self, route: str) -> None:
        verify = ssl.create_default_context(cafile=self.ca)
        with httpx.Client(verify=verify, timeout=10) as client:
            while not self._done.is_set():
                phase = self.phase
                started = time.monotonic()
                try:
                    outcome = str(client.get(self.url + route).status_code)
                except httpx.HTTPError as err:
                    outcome = type(err).__name__
                self.seen[phase][outcome] += 1
                if not outcome.startswith("2"):
                    self.failures.append((time.monotonic(), outcome))
                self.slowest[phase] = max(self.slowest[phase], time.monotonic() - started)


def discovered(server: str, state_dir: Path, network: str) -> list[str] | str:
    """The A records of `DISCOVERY_NAME`, or why there are none; in VPC mode asked from
    inside a backend-public task's network namespace (the server is inside the VPC)."""
    host, port = server.rsplit(":", 1)
    if network == "vpc":
        code = (
            "import dns.message, dns.query; "
            f"a = dns.query.udp(dns.message.make_query({DISCOVERY_NAME!r}, 'A'), {host!r}, 2, "
            f"{port}); print(*sorted(r.address for rr in a.answer for r in rr))"
        )
        task = next(
            (r.pid for r in state.recorded_processes(state_dir) if "backend-public" in r.what),
            None,
        )
        if task is None:
            return "no backend-public task to ask from"
        argv = ["nsenter", "-t", str(task), "-n", sys.executable, "-c", code]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        return sorted(done.stdout.split()) if done.returncode == 0 else "no answer"
    try:
        answer = dns.query.udp(dns.message.make_query(DISCOVERY_NAME, "A"), host, 2, int(port))
    except (dns.exception.DNSException, OSError) as err:
        return f"no answer ({type(err).__name__})"
    return sorted(r.address for rrset in answer.answer for r in rrset)


def measure(seconds: float, threads: int, after: float, network: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fargo-away-") as tmp:
        state_dir = Path(tmp) / "state"
        spec = own_network(Path(tmp))
        publish = {443: free_port(), 80: free_port()}
        args = ["-f", str(spec), "--state-dir", str(state_dir), "--network", network]
        for port, host_port in publish.items():
            args += ["--publish", f"{port}:{host_port}"]
        fargo("up", "--detach", *args)
        try:
            status = json.loads(fargo("status", "--json", "--state-dir", str(state_dir)).stdout)
            dns_server = status["endpoints"]["discovery_dns_server"]
            url = next(
                u for u in status["endpoints"]["load_balancers"]["public"] if u.startswith("https")
            )
            records_before = discovered(dns_server, state_dir, network)
            with Load(url, str(state_dir / "ca" / "ca.pem"), threads) as load:
                time.sleep(3)
                control = psutil.Process(status["pid"])
                load.phase = "away"
                control.send_signal(signal.SIGKILL)
                control.wait(5)
                time.sleep(seconds)
                records_away = discovered(dns_server, state_dir, network)
                load.phase = "up again"
                started = time.monotonic()
                again = fargo("up", "--detach", *args).stdout
                up_seconds = time.monotonic() - started
                returned = time.monotonic()
                time.sleep(2)
                load.phase = "after"
                time.sleep(after)
            said = next((line for line in again.splitlines() if "previous control" in line), "")
            return {
                "seen": {phase: dict(counts) for phase, counts in load.seen.items()},
                "slowest": dict(load.slowest),
                "records_before": records_before,
                "records_away": records_away,
                "up_seconds": up_seconds,
                "said": said,
                "failures_after_up": [
                    (round(t - returned, 1), outcome) for t, outcome in load.failures if t > started
                ],
            }
        finally:
            fargo("down", "--state-dir", str(state_dir))
            if keep := os.environ.get("FARGO_BENCH_KEEP_LOGS"):  # to see what happened
                shutil.copytree(state_dir / "logs", keep, dirs_exist_ok=True)


def failed(counts: dict[str, int]) -> int:
    return sum(n for outcome, n in counts.items() if not outcome.startswith("2"))


def report(results: dict[str, dict[str, Any]], seconds: float, threads: int, after: float) -> str:
    sections = [
        "## The data plane while the control plane is away (issue 11)",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d} by `bench/control_plane_away_bench.py`: the "
        f"reference system in {' and '.join(f'{n} mode' for n in results)}, "
        f"{threads} clients sending one request after another through the public HTTPS "
        "listener (half `/api/public`, half `/api/private`, which resolves "
        "backend-private through discovery), the control plane SIGKILLed for "
        f"{seconds:g} s, then `fargo up --detach` run again. Rerun: "
        "`.venv/bin/python bench/run.py --only control_plane_away`.",
        "",
    ]
    for network, result in results.items():
        sections += [*mode_report(network, result, seconds, after), ""]
    return "\n".join(sections)


def mode_report(network: str, result: dict[str, Any], seconds: float, after: float) -> list[str]:
    seen = result["seen"]
    away = seen.get("away", {})
    again = seen.get("up again", {})
    stops = "the old Caddy, then the old tasks stop" if network == "loopback" else "old VPC gone"
    rows = []
    for phase, label in (
        ("before", "before (3 s)"),
        ("away", f"control plane SIGKILLed ({seconds:g} s)"),
        ("up again", f"`fargo up --detach` again (+2 s; it took {result['up_seconds']:.1f} s)"),
        ("after", f"after ({after:g} s: {stops})"),
    ):
        counts = seen.get(phase, {})
        outcomes = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
        rows.append(
            f"| {label} | {sum(counts.values())} | {failed(counts)} | "
            f"{result['slowest'].get(phase, 0) * 1000:.0f} | {outcomes} |"
        )
    met = "met" if failed(away) == 0 and sum(away.values()) > 0 else "**missed**"
    same = result["records_away"] == result["records_before"]
    return [
        f"### {network} mode",
        "",
        "| phase | requests | failed | slowest ms | outcomes |",
        "|---|---:|---:|---:|---|",
        *rows,
        "",
        f"- {met}: 0 failed requests during {seconds:g} s of a SIGKILLed control plane "
        f"({failed(away)} failed)",
        f"- discovery while away: `{DISCOVERY_NAME}` answered {result['records_away']} "
        f"({'the records from before the kill' if same else 'not the records from before'})",
        f"- `fargo up` again: {failed(again) + failed(seen.get('after', {}))} failed requests "
        "from its start until the crashed run's last task stopped; it said: "
        f"{result['said'] or '(nothing about the crashed run)'}",
        "- failures after `fargo up` began, in seconds since it returned: "
        + (", ".join(f"{t:+g} s {o}" for t, o in result["failures_after_up"]) or "none"),
    ]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--after", type=float, default=65.0)
    parser.add_argument("--network", default="loopback,vpc")
    args = parser.parse_args()
    results = {}
    for network in args.network.split(","):
        if network == "vpc" and (reason := vpc_mode_unavailable()) is not None:
            print(f"VPC mode skipped: {reason}", file=sys.stderr)
            continue
        results[network] = measure(args.seconds, args.threads, args.after, network)
    text = report(results, args.seconds, args.threads, args.after)
    if FRAGMENT.exists() and NOTES in (kept := FRAGMENT.read_text()):
        text += "\n" + NOTES + kept.split(NOTES, 1)[1]  # written by people: kept
    FRAGMENT.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
