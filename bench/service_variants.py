"""The builds of the demo services that ``bench/services_bench.py`` compares.

A :class:`Variant` says how to start each of the three services; the benchmark
starts every variant's processes side by side and interleaves their runs::

    with running_variants(log_dir, [SERVICE_KIT, STARLETTE]) as tasks:
        tasks["starlette"].public.url  # http://127.0.0.1:<port>

- ``service-kit``: ``services/*`` as they ship (raw ASGI on ``service_kit.asgi``,
  uvicorn's httptools protocol subclassed by ``service_kit.protocol``);
- ``starlette``: ``bench/starlette_services.py`` on uvicorn's own httptools
  protocol (no private subclass);
- ``starlette-batching``: the same app on ``service_kit.protocol``'s subclass,
  which shows what the subclass alone is worth;
- ``xray-default``: the shipped services with tracing on (the OpenTelemetry API,
  ``service_kit.otel``, X-Ray segments), sampled by X-Ray's default rule (1 request a
  second, then 5 %), segments sent to a UDP sink standing for the daemon;
- ``xray-all``: the same, every request traced (``XRAY_SAMPLING_RATE=1``): the cost of
  a segment per request, the worst case.
"""

from __future__ import annotations

import contextlib
import importlib.util
import socket
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from testkit import MetadataServer, ServiceProcess, free_port

BENCH_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Variant:
    """One build of the three services."""

    name: str
    label: str
    module: str | None = None  # None: each service's own package (``python -m backend_public``)
    args: tuple[str, ...] = ()
    needs: str | None = None  # a package it imports that may not be installed
    env: tuple[tuple[str, str], ...] = ()  # set in every service's environment
    traced: bool = False  # AWS_XRAY_DAEMON_ADDRESS set to the benchmark's UDP sink

    def available(self) -> bool:
        """Whether what it needs is installed."""
        return self.needs is None or importlib.util.find_spec(self.needs) is not None

    def process(
        self,
        service: str,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        env: dict[str, str] | None = None,
        stdout: IO[bytes] | None = None,
    ) -> ServiceProcess:
        """An unstarted process running ``service`` (e.g. ``backend_public``)."""
        if self.module is None:
            return ServiceProcess(service, host=host, port=port, env=env, stdout=stdout)
        return ServiceProcess(
            self.module,
            host=host,
            port=port,
            env=env,
            stdout=stdout,
            args=(service, *self.args),
            pythonpath=(BENCH_DIR,),
        )


SERVICE_KIT = Variant("service-kit", "service kit (raw ASGI, batching protocol)")
STARLETTE = Variant(
    "starlette",
    "Starlette (stock uvicorn httptools)",
    module="starlette_services",
    args=("httptools",),
    needs="starlette",
)
STARLETTE_BATCHING = Variant(
    "starlette-batching",
    "Starlette + batching protocol",
    module="starlette_services",
    args=("batching",),
    needs="starlette",
)
XRAY_DEFAULT = Variant("xray-default", "service kit + X-Ray (default sampling rule)", traced=True)
XRAY_ALL = Variant(
    "xray-all",
    "service kit + X-Ray (every request traced)",
    env=(("XRAY_SAMPLING_RATE", "1"),),
    traced=True,
)
VARIANTS = {v.name: v for v in (SERVICE_KIT, STARLETTE, STARLETTE_BATCHING, XRAY_DEFAULT, XRAY_ALL)}


class SegmentSink:
    """A UDP socket on loopback standing for the X-Ray daemon: reads and counts datagrams
    (in a thread, on the same cores: the daemon's sidecar shares the task's CPU too)."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self._socket.bind(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._socket.getsockname()[1]}"
        self.received = 0
        self._thread = threading.Thread(target=self._read, daemon=True)

    def __enter__(self) -> SegmentSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._socket.close()

    def _read(self) -> None:
        while True:
            try:
                self._socket.recv(65536)
            except OSError:
                return
            self.received += 1


@dataclass(frozen=True)
class Tasks:
    """One variant's processes: backend-public and two backend-private tasks."""

    variant: Variant
    public: ServiceProcess
    private: tuple[ServiceProcess, ServiceProcess]

    @property
    def processes(self) -> dict[str, ServiceProcess]:
        """By name: ``backend_public``, ``backend_private_a``, ``backend_private_b``."""
        a, b = self.private
        return {"backend_private_a": a, "backend_private_b": b, "backend_public": self.public}

    @property
    def pids(self) -> list[int]:
        """Process ids of the three (started) processes."""
        return [p.process.pid for p in self.processes.values() if p.process is not None]


def _tasks(
    variant: Variant,
    metadata: MetadataServer,
    log_dir: Path,
    stack: contextlib.ExitStack,
    sink: SegmentSink,
) -> Tasks:
    def log(name: str) -> IO[bytes]:
        return stack.enter_context(open(log_dir / f"{variant.name}-{name}.log", "wb"))

    def traced(name: str) -> dict[str, str]:
        env = dict(variant.env)
        if variant.traced:
            env.update(AWS_XRAY_DAEMON_ADDRESS=sink.address, AWS_XRAY_TRACING_NAME=name)
        return env

    port = free_port("127.0.0.1", "127.0.0.2")
    private = tuple(
        variant.process(
            "backend_private",
            host=host,
            port=port,
            env={
                "ECS_CONTAINER_METADATA_URI_V4": metadata.base_url(f"backend-private-{task}"),
                **traced("backend-private"),
            },
            stdout=log(f"backend_private_{task}"),
        )
        for task, host in (("a", "127.0.0.1"), ("b", "127.0.0.2"))
    )
    public = variant.process(
        "backend_public",
        env={
            # a name, resolved (and cached) by the service, like a Cloud Map name
            "PRIVATE_DISCOVERY_URL": f"http://localhost:{port}",
            "PRIVATE_ALB_URL": f"http://127.0.0.2:{port}",
            **traced("backend-public"),
        },
        stdout=log("backend_public"),
    )
    return Tasks(variant, public, (private[0], private[1]))


@contextlib.contextmanager
def running_variants(log_dir: Path, variants: Sequence[Variant]) -> Iterator[dict[str, Tasks]]:
    """Every variant's three processes, ready, by variant name; all stopped on exit."""
    with MetadataServer() as metadata, SegmentSink() as sink, contextlib.ExitStack() as stack:
        all_tasks = {v.name: _tasks(v, metadata, log_dir, stack, sink) for v in variants}
        processes = [p for tasks in all_tasks.values() for p in tasks.processes.values()]
        try:
            for process in processes:
                process.start()
            for process in processes:
                process.wait_ready()
            yield all_tasks
        finally:
            for process in processes:
                process.stop()
