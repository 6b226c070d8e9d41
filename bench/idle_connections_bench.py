"""20,000 idle connections on one listener do not stall the others (issue 11): requests
through the public HTTPS listener before and while the HTTP listener holds that many idle
connections. Writes docs/benchmarks/idle_connections.md.

python bench/idle_connections_bench.py [--connections 20000] [--requests 300]

The reference system (`fargo.yaml`, on a VPC CIDR of its own) runs in loopback mode in a
temporary state folder on free ports. The idle connections are opened from this process
(its open-file limit raised for them, which needs root beyond the hard limit) to the
public load balancer's port-80 listener and left silent; the load balancer keeps them
for its `idle_timeout` (60 s), as ALB does. Meanwhile one client sends ``--requests``
requests one after another to `/api/public` through the port-443 listener, each on a new
connection (the costliest case: a new TLS handshake each), and a new connection to the
port-80 listener must still get its redirect.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import socket
import ssl
import statistics
import sys
import tempfile
import time
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path

import httpx
from control_plane_away_bench import ROOT, fargo, free_port

FRAGMENT = ROOT / "docs" / "benchmarks" / "idle_connections.md"
HEADROOM = 1024  # descriptors of this process besides the idle connections


def own_network(folder: Path) -> Path:
    """The reference spec on a VPC of its own (10.63.0.0/16); its services linked in."""
    (folder / "services").symlink_to(ROOT / "services")
    spec = folder / "fargo.yaml"
    spec.write_text((ROOT / "fargo.yaml").read_text().replace("10.0.", "10.63."))
    return spec


def raise_own_limit(connections: int) -> None:
    needed = connections + HEADROOM
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, max(hard, needed)))
    except (ValueError, PermissionError):
        raise SystemExit(
            f"{connections} connections need an open-file limit of {needed}; this process "
            f"may have at most {hard} (run as root, or with a higher `ulimit -Hn`)"
        ) from None


def open_idle(address: tuple[str, int], count: int) -> list[socket.socket]:
    """``count`` connected, silent sockets to ``address``."""
    idle = []
    for opened in range(count):
        sock = socket.socket()
        try:
            sock.connect(address)
        except OSError as err:
            sock.close()
            raise RuntimeError(f"connection {opened + 1} of {count}: {err}") from err
        idle.append(sock)
    return idle


def latencies(url: str, ca: str, requests: int) -> tuple[list[float], int]:
    """Seconds per request, each on a new connection; failures."""
    verify = ssl.create_default_context(cafile=ca)
    took, failed = [], 0
    for _ in range(requests):
        started = time.perf_counter()
        try:
            with httpx.Client(verify=verify, timeout=10) as client:
                ok = client.get(url).status_code == 200
        except httpx.HTTPError:
            ok = False
        took.append(time.perf_counter() - started)
        failed += not ok
    return took, failed


def caddy_figures(state_dir: Path) -> tuple[int, str]:
    """Descriptors Caddy has open and its open-file limit, as the kernel says."""
    status = fargo("status", "--json", "--state-dir", str(state_dir)).stdout
    pid = json.loads(status)["load_balancers"]["data_planes"][0]["pid"]
    limits = Path(f"/proc/{pid}/limits").read_text().splitlines()
    limit = next(line for line in limits if line.startswith("Max open files"))
    return len(list(Path(f"/proc/{pid}/fd").iterdir())), " ".join(limit.split()[3:5])


def summary(took: list[float]) -> str:
    ms = sorted(t * 1000 for t in took)
    p99 = ms[min(len(ms) - 1, round(0.99 * len(ms)))]
    return f"{statistics.median(ms):.1f} | {p99:.1f} | {ms[-1]:.1f}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    raise_own_limit(args.connections)
    with tempfile.TemporaryDirectory(prefix="fargo-idle-") as scratch:
        folder = Path(scratch)
        spec = own_network(folder)
        state_dir = folder / "state"
        http, https = free_port(), free_port()
        fargo(
            "up",
            "--detach",
            "--network",
            "loopback",
            "-f",
            str(spec),
            "--state-dir",
            str(state_dir),
            "--publish",
            f"80:{http}",
            "--publish",
            f"443:{https}",
        )
        idle: list[socket.socket] = []
        try:
            status = json.loads(fargo("status", "--json", "--state-dir", str(state_dir)).stdout)
            urls = status["endpoints"]["load_balancers"]["public"]
            secure = next(u for u in urls if u.startswith("https://"))
            plain = urllib.parse.urlsplit(next(u for u in urls if u.startswith("http://")))
            assert plain.hostname is not None and plain.port is not None, plain
            url = f"{secure}/api/public"
            ca = str(state_dir / "ca" / "ca.pem")
            before, failed_before = latencies(url, ca, args.requests)
            began = time.perf_counter()
            idle = open_idle((plain.hostname, plain.port), args.connections)
            opened = time.perf_counter() - began
            during, failed_during = latencies(url, ca, args.requests)
            redirect = httpx.get(plain.geturl() + "/", timeout=10).status_code
            held, limit = caddy_figures(state_dir)
        finally:
            for sock in idle:
                with contextlib.suppress(OSError):
                    sock.close()
            fargo("down", "--state-dir", str(state_dir))
    when = datetime.now(UTC).isoformat(timespec="seconds")
    lines = [
        f"## {args.connections:,} idle connections on one listener (issue 11)",
        "",
        f"`bench/idle_connections_bench.py`, {when}: the reference system in loopback mode;",
        f"{args.connections:,} idle connections opened to the public load balancer's HTTP",
        f"listener in {opened:.1f} s; {args.requests} requests to `/api/public` through its HTTPS",
        "listener, one after another, each on a new connection (a TLS handshake each).",
        "",
        "| phase | p50 ms | p99 ms | max ms | failed |",
        "|---|---:|---:|---:|---:|",
        f"| before | {summary(before)} | {failed_before} |",
        f"| with the idle connections held | {summary(during)} | {failed_during} |",
        "",
        f"Caddy meanwhile: {held:,} descriptors open, open-file limit (soft, hard) {limit}; a",
        f"new connection to the HTTP listener got its redirect ({redirect}).",
        "",
    ]
    if args.connections < 20_000:
        lines[-1:-1] = [
            "",
            f"Fewer than the issue's 20,000: this machine's hard limit ({limit.split()[-1]}) holds",
            "both this process's connections and Caddy's, and raising a hard limit needs",
            "`CAP_SYS_RESOURCE`, which root lacks here; where the twin has it, Caddy runs at",
            "`fs.nr_open` (`fargo.local.limits`).",
            "",
        ]
    FRAGMENT.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0 if not failed_during and redirect == 301 else 1


if __name__ == "__main__":
    sys.exit(main())
