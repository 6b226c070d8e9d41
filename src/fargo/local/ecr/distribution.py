"""ECR's wire side: the read half of the OCI distribution API over a ``BlobStore``.

Serves ``GET /v2/``, ``GET|HEAD /v2/<name>/manifests/<tag|digest>``,
``GET|HEAD /v2/<name>/blobs/<digest>`` (streamed from disk, ranges honoured) and
``GET /v2/<name>/tags/list`` (``n``/``last`` pagination); any other method is
405 ``UNSUPPORTED``. Errors have the spec's shape, ``{"errors": [{"code", "message",
"detail"}]}``. Every request lands in the pull log with the peer address the
socket saw — behind the twin's NAT gateway that is the NAT's address — and the address
it arrived at (``via``): the registry's own, or a VPC interface endpoint's (``ecr.dkr``)
in a private subnet, where the peer is the task itself::

    server = RegistryServer(BlobStore(state / "ecr"), log_path=state / "ecr-pulls.jsonl")
    assert not server.validate()
    await server.start(sock)          # a socket bound by the caller (in any netns), or
    await server.start()              # bind host:port itself (port 0: any free port),
                                      # and each of ``endpoints`` (VPC interface endpoints)
    ...
    {pull.source for pull in server.pulls}   # {"198.51.100.2"}
    await server.stop()               # idempotent, safe after a failed start
"""

from __future__ import annotations

import ipaddress
import json
import socket
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from aiohttp import web

from fargo.local.ec2.sockets import ServerSocketFactory, bind_socket
from fargo.local.ecr.blobs import BlobStore
from fargo.local.ecr.endpoints import STORE, oci_errors, routes

DEFAULT_LOG_SIZE = 1000


@dataclass(frozen=True)
class Pull:
    """One request to the registry, as the server saw it."""

    time: float
    source: str  # the peer's IP address
    method: str
    path: str
    repository: str | None
    reference: str | None  # the tag or digest asked for
    digest: str | None  # what it resolved to
    status: int
    via: str = ""  # host:port the request arrived at (the registry's, or an endpoint's)


class PullLog:
    """The last ``size`` requests in memory, and optionally every one as a JSON line."""

    def __init__(self, size: int = DEFAULT_LOG_SIZE, path: Path | None = None) -> None:
        self.path = path
        self._records: deque[Pull] = deque(maxlen=size)
        self._file: IO[str] | None = None

    @property
    def records(self) -> tuple[Pull, ...]:
        return tuple(self._records)

    def open(self) -> None:
        if self.path is not None and self._file is None:
            self._file = self.path.open("a", encoding="utf-8")

    def close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()

    def append(self, pull: Pull) -> None:
        self._records.append(pull)
        if self._file is not None:
            self._file.write(json.dumps(asdict(pull)) + "\n")
            self._file.flush()


class RegistryServer:
    """The registry as a twin part: ``validate``, ``start``, ``stop``."""

    name = "ECR registry"

    def __init__(
        self,
        store: BlobStore,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_path: Path | None = None,
        log_size: int = DEFAULT_LOG_SIZE,
        shutdown_timeout: float = 2.0,
        bind: ServerSocketFactory = bind_socket,
        endpoints: Sequence[tuple[str, int]] = (),
    ) -> None:
        self.store = store
        self.host, self.port = host, port
        # VPC interface endpoints (ecr.dkr): the same registry, at an address in a subnet.
        self.endpoints = tuple(endpoints)
        self._bind = bind  # the network mode's: the registry sits on the internet side
        self.log = PullLog(log_size, log_path)
        self.shutdown_timeout = shutdown_timeout
        self._runner: web.AppRunner | None = None
        self._sock: socket.socket | None = None
        self._endpoint_socks: list[socket.socket] = []
        self._address: tuple[str, int] | None = None

    @property
    def pulls(self) -> tuple[Pull, ...]:
        """The recent requests, oldest first."""
        return self.log.records

    @property
    def address(self) -> tuple[str, int]:
        if self._address is None:
            raise RuntimeError("the registry is not serving")
        return self._address

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    def validate(self) -> list[str]:
        """Problems with the settings, found without touching anything."""
        problems = []
        for host, port in ((self.host, self.port), *self.endpoints):
            try:
                ipaddress.ip_address(host)
            except ValueError:
                problems.append(f"host {host!r} is not an IP address")
            if not 0 <= port <= 65535:
                problems.append(f"port {port} is out of range")
        if self.store.root.exists() and not self.store.root.is_dir():
            problems.append(f"store {self.store.root} is not a folder")
        if self.log.path is not None and not self.log.path.parent.is_dir():
            problems.append(f"no folder for the pull log {self.log.path}")
        return problems

    async def start(self, sock: socket.socket | None = None) -> None:
        """Serve on ``sock`` (bound by the caller; the server closes it on ``stop``) or
        on a socket bound to ``host:port``."""
        if self._runner is not None:
            raise RuntimeError("the registry is already serving")
        try:
            self._sock = sock or self._bind(socket.SOCK_STREAM, self.host, self.port)
            self._address = self._sock.getsockname()[:2]
            self.log.open()
            app = web.Application(middlewares=[oci_errors])
            app[STORE] = self.store
            app.router.add_routes(routes)
            app.on_response_prepare.append(self._record)
            self._runner = web.AppRunner(
                app, handle_signals=False, access_log=None, shutdown_timeout=self.shutdown_timeout
            )
            await self._runner.setup()
            await web.SockSite(self._runner, self._sock).start()
            for host, port in self.endpoints:
                sock = self._bind(socket.SOCK_STREAM, host, port)
                self._endpoint_socks.append(sock)
                await web.SockSite(self._runner, sock).start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        sock, self._sock = self._sock, None
        endpoint_socks, self._endpoint_socks = self._endpoint_socks, []
        self._address = None
        try:
            if runner is not None:
                await runner.cleanup()
        finally:
            for each in (sock, *endpoint_socks):
                if each is not None:
                    each.close()
            self.log.close()

    async def _record(self, request: web.Request, response: web.StreamResponse) -> None:
        info = request.match_info
        self.log.append(
            Pull(
                time=time.time(),
                source=request.remote or "",
                method=request.method,
                path=request.path,
                repository=info.get("name"),
                reference=info.get("reference") or info.get("digest"),
                digest=response.headers.get("Docker-Content-Digest"),
                status=response.status,
                via=_arrived_at(request),
            )
        )


def _arrived_at(request: web.Request) -> str:
    """``host:port`` of the socket the request came in on."""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    return f"{sockname[0]}:{sockname[1]}" if sockname else ""
