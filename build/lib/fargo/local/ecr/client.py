"""Talking to a registry: GETs over aiohttp, on sockets the caller may supply, verified.

A task in a private subnet must reach the registry from its own network
namespace, so the connection is the caller's to make: ``connect(host, port)``
returns a connected socket (made in any namespace), and ``SocketConnector``
hands it to aiohttp, as aiohttp's own ``UnixConnector`` does with a unix socket.
Everything above the socket — HTTP/1.1, chunking, keep-alive, timeouts — is
aiohttp's. Every byte is checked against the digest it was asked for::

    async with RegistryClient("http://198.51.100.1:5000", connect=in_task_netns) as registry:
        digest, body = await registry.manifest("backend", "latest")
        config = await registry.blob_bytes("backend", config_descriptor)
        with open(path, "wb") as out:
            await registry.blob_to("backend", layer_descriptor, out)

Failures are ``CannotPullContainerError``, named as ECS names them, with a
``reason``: ``connect``, ``not_found``, ``digest_mismatch``, ``invalid``,
``platform``, ``unpack`` or ``registry``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Protocol

import aiohttp
from aiohttp.client_proto import ResponseHandler
from aiohttp.client_reqrep import ClientRequest
from aiohttp.tracing import Trace
from yarl import URL

from fargo.local.ecr.oci import MANIFEST_MEDIA_TYPE, Descriptor, is_digest, sha256_digest

Connect = Callable[[str, int], Awaitable[socket.socket]]
MANIFEST_LIMIT = 4 << 20  # containerd's limit for manifests and configs
CHUNK = 1 << 16


class CannotPullContainerError(Exception):
    """The image could not be pulled; ``reason`` says why, ``code`` is the registry's."""

    def __init__(self, reason: str, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.reason, self.code = reason, code


class _Writable(Protocol):
    def write(self, data: bytes, /) -> object: ...


class SocketConnector(aiohttp.BaseConnector):
    """An aiohttp connector whose connections come from ``connect(host, port)``."""

    def __init__(self, connect: Connect, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._connect = connect

    async def _create_connection(
        self, req: ClientRequest, traces: list[Trace], timeout: aiohttp.ClientTimeout
    ) -> ResponseHandler:
        host, port = req.url.raw_host or "", req.port or 80
        sock: socket.socket | None = None
        try:
            async with asyncio.timeout(timeout.sock_connect):
                sock = await self._connect(host, port)
                sock.setblocking(False)
                _, protocol = await self._loop.create_connection(self._factory, sock=sock)
        except BaseException as error:
            if sock is not None:
                sock.close()
            if isinstance(error, OSError):  # TimeoutError included
                raise aiohttp.ClientConnectorError(req.connection_key, error) from error
            raise
        return protocol


class RegistryClient:
    """A session with one registry; an async context manager."""

    def __init__(self, registry_url: str, *, connect: Connect | None = None, timeout: float = 30):
        self.url = URL(registry_url)
        if self.url.scheme not in ("http", "https") or not self.url.host:
            raise ValueError(f"registry URL must be http(s)://host[:port], not {registry_url!r}")
        if connect is not None and self.url.scheme != "http":
            raise ValueError("a caller's connect() carries plain http only")
        self.host = f"{self.url.host}:{self.url.port}"
        self._connect = connect
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> RegistryClient:
        connector = SocketConnector(self._connect) if self._connect else aiohttp.TCPConnector()
        self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()

    async def manifest(self, repository: str, reference: str) -> tuple[str, bytes]:
        """The manifest's digest and bytes, checked against the digest asked for and the
        ``Docker-Content-Digest`` the registry sent."""
        image = f"{self.host}/{repository}{'@' if is_digest(reference) else ':'}{reference}"
        headers = {"Accept": MANIFEST_MEDIA_TYPE}
        async with self._get(f"/v2/{repository}/manifests/{reference}", image, headers) as answer:
            body = await self._read(answer, image, MANIFEST_LIMIT)
            content_type = answer.headers.get("Content-Type", "").split(";")[0].strip()
            claimed = answer.headers.get("Docker-Content-Digest")
        digest = sha256_digest(body)
        if content_type != MANIFEST_MEDIA_TYPE:
            raise CannotPullContainerError(
                "invalid", f"{image}: unsupported manifest type {content_type!r}"
            )
        for expected in (reference if is_digest(reference) else None, claimed):
            if expected is not None and expected != digest:
                message = f"{image}: manifest digest mismatch: expected {expected}, got {digest}"
                raise CannotPullContainerError("digest_mismatch", message)
        return digest, body

    async def blob_bytes(self, repository: str, blob: Descriptor) -> bytes:
        """A small blob (a config), verified, in memory."""
        if blob.size > MANIFEST_LIMIT:
            raise CannotPullContainerError(
                "invalid", f"{blob.digest}: {blob.size} bytes is too big"
            )
        chunks = bytearray()
        await self.blob_to(repository, blob, chunks)
        return bytes(chunks)

    async def blob_to(self, repository: str, blob: Descriptor, out: _Writable | bytearray) -> None:
        """Stream a blob into ``out``, hashing as it comes; a wrong byte or size raises."""
        image = f"{self.host}/{repository}@{blob.digest}"
        sha, size = hashlib.sha256(), 0
        async with self._get(f"/v2/{repository}/blobs/{blob.digest}", image, {}) as answer:
            claimed = answer.headers.get("Docker-Content-Digest", blob.digest)
            try:
                async for chunk in answer.content.iter_chunked(CHUNK):
                    size += len(chunk)
                    if size > blob.size:
                        break
                    sha.update(chunk)
                    if isinstance(out, bytearray):
                        out.extend(chunk)
                    else:
                        out.write(chunk)
            except (aiohttp.ClientError, TimeoutError) as error:
                raise self._lost(image, error) from error
        digest = "sha256:" + sha.hexdigest()
        if claimed != blob.digest or size != blob.size or digest != blob.digest:
            got = f"{size} bytes" if size != blob.size else digest
            message = f"{image}: blob digest mismatch: expected {blob.digest}, got {got}"
            raise CannotPullContainerError("digest_mismatch", message)

    def _get(self, path: str, image: str, headers: dict[str, str]) -> _Answer:
        if self._session is None:
            raise RuntimeError("use RegistryClient as an async context manager")
        return _Answer(self, self._session.get(self.url.with_path(path), headers=headers), image)

    async def _read(self, answer: aiohttp.ClientResponse, image: str, limit: int) -> bytes:
        try:
            body = await answer.content.read(limit + 1)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise self._lost(image, error) from error
        if len(body) > limit:
            raise CannotPullContainerError("invalid", f"{image}: over {limit} bytes")
        return body

    def _lost(self, image: str, error: BaseException) -> CannotPullContainerError:
        message = f"{image}: failed to read from registry {self.host}: {error or type(error)}"
        return CannotPullContainerError("registry", message)

    def _unreachable(self, image: str, error: BaseException) -> CannotPullContainerError:
        detail = str(error) or type(error).__name__
        message = f"{image}: failed to resolve/connect to registry {self.host}: {detail}"
        return CannotPullContainerError("connect", message)


class _Answer:
    """``async with``: a 200 response, or the registry's error as ``CannotPullContainerError``."""

    def __init__(
        self, client: RegistryClient, request: Awaitable[aiohttp.ClientResponse], image: str
    ) -> None:
        self._client, self._request, self._image = client, request, image
        self._response: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> aiohttp.ClientResponse:
        try:
            self._response = response = await self._request
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError, OSError) as error:
            raise self._client._unreachable(self._image, error) from error
        except (aiohttp.ClientError, TimeoutError) as error:
            raise self._client._lost(self._image, error) from error
        if response.status != 200:
            body = await self._client._read(response, self._image, MANIFEST_LIMIT)
            response.release()
            raise _registry_error(self._image, response.status, body)
        return response

    async def __aexit__(self, *exc_info: object) -> None:
        if self._response is not None:
            self._response.release()


def _registry_error(image: str, status: int, body: bytes) -> CannotPullContainerError:
    """The OCI error body (``{"errors": [{"code", "message"}]}``) as an ECS error."""
    code, message = None, body[:200].decode(errors="replace")
    try:
        first = json.loads(body)["errors"][0]
        code, message = str(first["code"]), str(first.get("message", ""))
    except (ValueError, KeyError, IndexError, TypeError):
        pass
    if status == 404 or code in {"MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN"}:
        return CannotPullContainerError(
            "not_found", f"{image}: not found: {code}: {message}", code=code
        )
    return CannotPullContainerError(
        "registry", f"{image}: registry answered {status} {code or ''}: {message}", code=code
    )
