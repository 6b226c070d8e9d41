"""Test helpers: services as real processes, and small fake servers they call.

Not part of any image (``.dockerignore`` leaves it out). ``conftest.py`` wraps
these in fixtures; tests import the types for annotations.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

SERVICES_DIR = Path(__file__).resolve().parent
# Variables of the services' environment contract: never inherited from the caller.
CONTRACT_ENV = (
    "HOST",
    "PORT",
    "PRIVATE_DISCOVERY_URL",
    "PRIVATE_ALB_URL",
    "DOWNSTREAM_CONNECT_TIMEOUT",
    "DOWNSTREAM_READ_TIMEOUT",
    "ECS_CONTAINER_METADATA_URI_V4",
    "FARGO_CONSOLE_URL",
    "AWS_XRAY_DAEMON_ADDRESS",
    "AWS_XRAY_TRACING_NAME",
    "XRAY_SAMPLING_RATE",
)
START_TIMEOUT_S = 15.0


def free_port(*hosts: str) -> int:
    """A TCP port nobody listens on, on every one of ``hosts`` (default 127.0.0.1)."""
    hosts = hosts or ("127.0.0.1",)
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind((hosts[0], 0))
            port: int = probe.getsockname()[1]
        try:
            for host in hosts:
                with socket.socket() as other:
                    other.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no TCP port free on all of {hosts}")


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout}s")
        time.sleep(0.01)


def refuses_connections(host: str, port: int) -> bool:
    """True when nothing accepts connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return False
    except ConnectionRefusedError:
        return True


class ServiceProcess:
    """``python -m <package>`` as a child process, as the local twin starts it.

    ``args`` follow the module name on the command line; ``pythonpath`` lists
    folders searched before ``services/`` (the benchmark runs variants kept in
    ``bench/`` this way).
    """

    def __init__(
        self,
        package: str,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        stdout: IO[bytes] | None = None,
        args: Sequence[str] = (),
        pythonpath: Sequence[Path] = (),
    ) -> None:
        self.package = package
        self.args = list(args)
        self.pythonpath = [*pythonpath, SERVICES_DIR]
        self.stdout_file = stdout  # None: collect stdout lines in self.stdout
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.env = dict(env or {})
        self.process: subprocess.Popen[bytes] | None = None
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._output = threading.Condition()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8080``."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        """Start the process (no waiting; see :meth:`wait_ready`)."""
        env = {key: value for key, value in os.environ.items() if key not in CONTRACT_ENV}
        env.update(
            PYTHONPATH=os.pathsep.join(str(folder) for folder in self.pythonpath),
            PYTHONDONTWRITEBYTECODE="1",
            HOST=self.host,
            PORT=str(self.port),
            **self.env,
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.package, *self.args],
            cwd=SERVICES_DIR,
            env=env,
            stdout=subprocess.PIPE if self.stdout_file is None else self.stdout_file,
            stderr=subprocess.PIPE,
        )
        for stream, lines in (
            (self.process.stdout, self.stdout),
            (self.process.stderr, self.stderr),
        ):
            if stream is not None:
                threading.Thread(target=self._drain, args=(stream, lines), daemon=True).start()
        return self

    def _drain(self, stream: IO[bytes], lines: list[str]) -> None:
        for raw in stream:
            with self._output:
                lines.append(raw.decode(errors="replace").rstrip("\n"))
                self._output.notify_all()

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> Self:
        """Wait until ``GET /`` answers 200; fail with the process's stderr if it exits."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"{self.package} exited early:\n" + "\n".join(self.stderr))
            try:
                connection = http.client.HTTPConnection(self.host, self.port, timeout=1)
                connection.request("GET", "/")
                if connection.getresponse().status == 200:
                    connection.close()
                    return self
                connection.close()
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.package} not ready on {self.url} within {timeout}s")
            time.sleep(0.02)

    def wait_for_stdout(self, predicate: Callable[[str], bool], timeout: float = 5.0) -> str:
        """The first stdout line matching ``predicate``, waiting up to ``timeout``."""
        return self._wait_for_line(self.stdout, "stdout", predicate, timeout)

    def wait_for_stderr(self, predicate: Callable[[str], bool], timeout: float = 5.0) -> str:
        """The first stderr line matching ``predicate``, waiting up to ``timeout``."""
        return self._wait_for_line(self.stderr, "stderr", predicate, timeout)

    def _wait_for_line(
        self, lines: list[str], name: str, predicate: Callable[[str], bool], timeout: float
    ) -> str:
        with self._output:
            found = self._output.wait_for(
                lambda: next((line for line in lines if predicate(line)), None), timeout
            )
        if found is None:
            raise TimeoutError(f"no matching line on {name} within {timeout}s: {lines}")
        return found

    def terminate(self, timeout: float = 10.0) -> int:
        """Send SIGTERM and return the exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def stop(self) -> None:
        """Stop the process if it is still running (idempotent)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


Spawn = Callable[..., ServiceProcess]
"""The ``spawn`` fixture: ``spawn(package, host=..., env=...)`` -> a ready process."""


@dataclass(frozen=True)
class PrivateTasks:
    """The ``private_tasks`` fixture: backend-private on two loopback addresses, one port."""

    port: int
    addresses: tuple[str, str]
    task_ids: tuple[str, str]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    resets = 0  # connections to reset (RST) at once, as a killed process's are

    def verify_request(self, request: Any, client_address: Any) -> bool:
        if self.resets > 0:
            self.resets -= 1
            request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False  # closed unanswered: with linger 0, that is a reset
        return True

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        # A caller that gave up (timeout) resets its connection: expected, not news.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _FakeServer:
    """A threaded HTTP server on 127.0.0.1 for the duration of a ``with`` block."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = _QuietServer(("127.0.0.1", 0), handler)
        self.server.owner = self  # type: ignore[attr-defined]
        self.port: int = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class MetadataServer(_FakeServer):
    """The ECS task metadata endpoint v4: ``GET /v4/<task id>/task`` -> ``{"TaskARN": ...}``."""

    def __init__(self) -> None:
        super().__init__(_MetadataHandler)
        self.requests: list[str] = []

    def base_url(self, task_id: str) -> str:
        """``ECS_CONTAINER_METADATA_URI_V4`` for a task with id ``task_id``."""
        return f"http://127.0.0.1:{self.port}/v4/{task_id}"


class _MetadataHandler(_Handler):
    def do_GET(self) -> None:
        owner: MetadataServer = self.server.owner  # type: ignore[attr-defined]
        owner.requests.append(self.path)
        parts = self.path.strip("/").split("/")
        if len(parts) != 3 or parts[0] != "v4" or parts[2] != "task":
            self.reply(404, b"not found")
            return
        arn = f"arn:aws:ecs:us-east-1:123456789012:task/demo-cluster/{parts[1]}"
        self.reply(200, json.dumps({"TaskARN": arn}).encode(), "application/json")


class FakeCallee(_FakeServer):
    """Stands in for backend-private: records requests; can hold them until released.

    With ``hold=True`` each request waits for :attr:`release` (at most
    ``hold_s``) before the answer ``TaskId: fake``; :attr:`received` is set when
    a request arrives.
    """

    def __init__(
        self,
        *,
        hold: bool = False,
        hold_s: float = 10.0,
        statuses: list[int] | None = None,
        resets: int = 0,
    ) -> None:
        super().__init__(_CalleeHandler)
        self.statuses = list(statuses or [])  # answered in turn, then 200
        self.server.resets = resets  # the first connections are reset
        self.hold = hold
        self.hold_s = hold_s
        self.received = threading.Event()
        self.release = threading.Event()
        self.requests: list[tuple[str, dict[str, str]]] = []

    @property
    def url(self) -> str:
        """Base URL to put in ``PRIVATE_DISCOVERY_URL`` / ``PRIVATE_ALB_URL``."""
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.release.set()  # let held handler threads finish
        super().close()


class _CalleeHandler(_Handler):
    def do_GET(self) -> None:
        owner: FakeCallee = self.server.owner  # type: ignore[attr-defined]
        owner.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        owner.received.set()
        if owner.hold:
            owner.release.wait(owner.hold_s)
        # The caller may have given up (read timeout) and closed the connection.
        with contextlib.suppress(OSError):
            status = owner.statuses.pop(0) if owner.statuses else 200
            self.reply(status, b"TaskId: fake" if status == 200 else b"bad gateway")


class Blackhole:
    """An address whose connects time out, as a task's whose host stopped answering: a
    listening socket with a backlog of zero whose accept queue is filled and never
    accepted, so the kernel drops every further SYN (Linux does, whatever
    ``tcp_syncookies``); nothing answers, nothing is refused.

        with Blackhole("127.0.0.5", port) as hole:
            ...  # connecting to hole.address:port hangs until the client gives up
    """

    FILL_TIMEOUT_S = 0.2

    def __init__(self, host: str, port: int) -> None:
        self.address = host
        self.port = port
        self._sockets: list[socket.socket] = []

    def __enter__(self) -> Self:
        listener = socket.socket()
        self._sockets.append(listener)
        listener.bind((self.address, self.port))
        listener.listen(0)
        for _ in range(16):  # the queue holds backlog + 1 connections
            client = socket.socket()
            client.settimeout(self.FILL_TIMEOUT_S)
            try:
                client.connect((self.address, self.port))
            except TimeoutError:
                client.close()
                return self  # full: this SYN was dropped
            self._sockets.append(client)
        self.__exit__(None, None, None)
        raise RuntimeError(f"could not fill the accept queue of {self.address}:{self.port}")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()
