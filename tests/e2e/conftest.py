"""A twin started with the real CLI (`fargo up --detach`), torn down with `fargo down`.

Every twin the tests start serves its internet-facing listeners on free ports the test
picks (`fargo up --publish LISTENER_PORT:HOST_PORT`), never on the reference system's
8443/8080: the tests run while a developer's own `make up` twin is running.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import signal
import socket
import ssl
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest
from tests.cli import run_fargo
from tests.e2e.nobody import nobody_folder, nobody_ids, nobody_venv  # noqa: F401 - fixtures

from fargo.local.status import Endpoints, ServiceStatus, TwinStatus
from fargo.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]


def fargo(*args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    result = run_fargo(*args, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(
            f"fargo {' '.join(args)} exited {result.returncode}:\n{result.stderr}{result.stdout}"
        )
    return result


_DNS_SERVERS: dict[Path, str] = {}  # state folder → its twin's discovery DNS address


@dataclass
class Twin:
    spec: Path
    state_dir: Path
    publish: dict[int, int] = field(default_factory=dict)
    """Spec listener port → the host port `fargo up --publish` serves it on."""
    network: str = "loopback"
    """``fargo up --network``: these tests check loopback mode; VPC mode has its own."""

    def up_args(self) -> list[str]:
        """``-f``, ``--state-dir`` and one ``--publish`` per published listener."""
        args = ["-f", str(self.spec), "--state-dir", str(self.state_dir)]
        args += ["--network", self.network]
        for listener_port, host_port in self.publish.items():
            args += ["--publish", f"{listener_port}:{host_port}"]
        return args

    def status(self) -> TwinStatus:
        """``fargo status --json``, read back into the model the control plane built it from."""
        printed = fargo("status", "--json", "--state-dir", str(self.state_dir)).stdout
        return TwinStatus.model_validate_json(printed)

    @property
    def ca(self) -> str:
        return str(self.state_dir / "ca" / "ca.pem")

    @functools.cached_property
    def endpoints(self) -> Endpoints:
        """The twin's endpoints; they don't change while it runs."""
        return self.status().endpoints

    def url(self, lb: str, scheme: str) -> str:
        urls = self.endpoints.load_balancers[lb]
        return next(u for u in urls if u.startswith(scheme + "://"))

    def address(self, lb: str, scheme: str) -> tuple[str, int]:
        """Where a listener of ``lb`` is reached, for a raw socket."""
        url = urllib.parse.urlsplit(self.url(lb, scheme))
        assert url.hostname is not None and url.port is not None, url
        return url.hostname, url.port

    def service(self, name: str) -> ServiceStatus:
        return self.status().service(name)

    def processes(self) -> list[psutil.Process]:
        """Every live process the twin started: its command line or environment names this
        state folder, or (a task) the twin's discovery DNS server."""
        found = []
        marker = str(self.state_dir)
        dns_server = self._dns_server()
        for process in psutil.process_iter(["cmdline"]):
            try:
                if any(marker in part for part in process.info["cmdline"] or []):
                    found.append(process)
                    continue
                environment = process.environ()
                if any(marker in v for v in environment.values()) or (
                    dns_server and environment.get("FARGO_DNS_SERVER") == dns_server
                ):
                    found.append(process)
            except psutil.Error:
                continue
        return found

    def _dns_server(self) -> str | None:
        """The discovery DNS server's address the twin's tasks are given (remembered: the
        file goes with the twin)."""
        known: dict[Path, str] = _DNS_SERVERS
        with contextlib.suppress(OSError):
            known[self.state_dir] = (
                (self.state_dir / "dns" / "discovery.address").read_text().strip()
            )
        return known.get(self.state_dir)


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free on 127.0.0.1 now (bound to 0, all held until all picked)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def public_listener_ports(spec: Path) -> list[int]:
    """The listener ports of the spec's internet-facing load balancers: the ones served on
    the host (internal load balancers listen on addresses of the private subnets)."""
    loaded = load_spec(spec)
    ports = {
        listener.port
        for lb in loaded.load_balancers.values()
        if lb.scheme == "internet-facing"
        for listener in lb.listeners
    }
    return sorted(ports)


def make_twin(spec: Path, state_dir: Path) -> Twin:
    """A twin of ``spec`` (not started) whose public listeners go to free host ports."""
    listener_ports = public_listener_ports(spec)
    return Twin(
        spec, state_dir, dict(zip(listener_ports, free_ports(len(listener_ports)), strict=True))
    )


def start_twin(spec: Path, state_dir: Path) -> Iterator[Twin]:
    twin = make_twin(spec, state_dir)
    fargo("up", "--detach", *twin.up_args())
    try:
        yield twin
    finally:
        fargo("down", "--state-dir", str(state_dir), check=False)


@pytest.fixture(scope="module")
def reference_twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    yield from start_twin(ROOT / "fargo.yaml", tmp_path_factory.mktemp("reference") / "state")


@pytest.fixture(scope="module")
def second_twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    yield from start_twin(
        Path(__file__).with_name("second.yaml"), tmp_path_factory.mktemp("second") / "state"
    )


def up_in_foreground(twin: Twin, timeout: float = 120) -> tuple[subprocess.Popen[str], list[str]]:
    """`fargo up` in the foreground, read until it says it is ready or exits; its output so
    far. Killed, and the test failed, if it says neither within ``timeout``."""
    process = subprocess.Popen(
        [sys.executable, "-m", "fargo.cli", "up", *twin.up_args()],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    stdout = process.stdout
    assert stdout is not None
    lines: list[str] = []

    def read_until_ready() -> None:
        for line in stdout:
            lines.append(line)
            if "ready; Ctrl-C stops everything" in line:
                return

    reader = threading.Thread(target=read_until_ready, daemon=True)
    reader.start()
    reader.join(timeout)  # returns at the ready line or at the end of the output
    if reader.is_alive():
        stop_in_foreground(twin, process)
        reader.join()
        raise AssertionError(f"`fargo up` not ready within {timeout:g} s:\n{''.join(lines)}")
    return process, lines


def stop_in_foreground(twin: Twin, process: subprocess.Popen[str]) -> None:
    """Ctrl-C, as a user would; then SIGKILL and `fargo down` to sweep what is left."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        fargo("down", "--state-dir", str(twin.state_dir), check=False)


def running(pid: int) -> bool:
    """Whether ``pid`` runs: a zombie has exited (the machine's init reaps it when it will)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def all_gone(processes: list[psutil.Process]) -> bool:
    return not [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


@contextlib.contextmanager
def under_load(
    twin: Twin,
    path: str,
    *,
    load_balancer: str = "public",
    scheme: str = "https",
    threads: int = 1,
) -> Iterator[collections.Counter[int | str]]:
    """Requests to ``path`` through the load balancer's listener, one after another in each
    of ``threads``, until the block ends: their status codes (or error names)."""
    seen: collections.Counter[int | str] = collections.Counter()
    done = threading.Event()
    url = twin.url(load_balancer, scheme) + path

    def load() -> None:
        verify = ssl.create_default_context(cafile=twin.ca) if scheme == "https" else True
        with httpx.Client(verify=verify, timeout=10) as client:
            while not done.is_set():
                try:
                    seen[client.get(url).status_code] += 1
                except httpx.HTTPError as err:
                    seen[type(err).__name__] += 1

    workers = [threading.Thread(target=load) for _ in range(threads)]
    for worker in workers:
        worker.start()
    try:
        yield seen
    finally:
        done.set()
        for worker in workers:
            worker.join()
