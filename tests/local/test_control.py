"""`ControlClient` errors: every way the control plane can fail to answer has its exception;
`GET /ready?wait=`."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, cast

import pytest
from aiohttp import web

from fargo.local.control.api import MAX_READY_WAIT_SECONDS, ControlServer
from fargo.local.control.client import (
    ControlClient,
    ControlPlaneErrorAnswer,
    ControlPlaneUnavailable,
)
from fargo.local.status import Readiness

if TYPE_CHECKING:
    from fargo.local.runtime import Runtime


async def serve(path: Path, handler: web.Handler) -> AsyncIterator[None]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.UnixSite(runner, str(path)).start()
    try:
        yield
    finally:
        await runner.cleanup()


@pytest.fixture
def sock(tmp_path: Path) -> Path:
    return tmp_path / "control.sock"


async def test_no_socket_is_unavailable(sock: Path) -> None:
    with pytest.raises(ControlPlaneUnavailable, match="no control plane socket"):
        await ControlClient(sock).get("/status")


async def test_a_socket_nobody_listens_on_is_unavailable(sock: Path) -> None:
    with socket.socket(socket.AF_UNIX) as stale:
        stale.bind(str(sock))  # left behind by a killed control plane: connect is refused
    with pytest.raises(ControlPlaneUnavailable, match="does not answer"):
        await ControlClient(sock).get("/status")


async def test_a_control_plane_that_does_not_answer_in_time_is_unavailable(sock: Path) -> None:
    release = asyncio.Event()

    async def stuck(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({})

    async for _ in serve(sock, stuck):
        with pytest.raises(ControlPlaneUnavailable, match=r"did not answer /ready within 0.2 s"):
            await ControlClient(sock, timeout=0.2).get("/ready")
        release.set()


async def test_an_error_answer_is_not_mistaken_for_no_control_plane(sock: Path) -> None:
    async def failing(request: web.Request) -> web.Response:
        return web.Response(status=500, text="boom\n")

    async for _ in serve(sock, failing):
        with pytest.raises(ControlPlaneErrorAnswer, match="/status: 500 boom") as caught:
            await ControlClient(sock).get("/status")
    assert caught.value.status == 500


async def test_an_answer_that_is_not_json_is_an_error_answer(sock: Path) -> None:
    async def html(request: web.Request) -> web.Response:
        return web.Response(text="<html>", content_type="text/html")

    async for _ in serve(sock, html):
        with pytest.raises(ControlPlaneErrorAnswer, match="not JSON"):
            await ControlClient(sock).get("/status")


async def test_a_json_answer_comes_back(sock: Path) -> None:
    async def ready(request: web.Request) -> web.Response:
        return web.json_response({"ready": True, "path": request.path})

    async for _ in serve(sock, ready):
        assert await ControlClient(sock).post("/down", timeout=1) == {
            "ready": True,
            "path": "/down",
        }


async def test_a_status_of_another_schema_is_an_error_answer_that_says_so(sock: Path) -> None:
    async def other_version(request: web.Request) -> web.Response:
        return web.json_response({"schema_version": 2, "services": "all fine"})

    async for _ in serve(sock, other_version):
        with pytest.raises(
            ControlPlaneErrorAnswer, match="status schema \\(version 1\\)"
        ) as caught:
            await ControlClient(sock).status()
    assert "another version of fargo" in str(caught.value)


async def test_readiness_comes_back_as_the_model(sock: Path) -> None:
    async def waiting(request: web.Request) -> web.Response:
        assert request.path == "/ready"
        return web.json_response(
            {"ready": False, "failure": None, "waiting": ["frontend 0/1 healthy (STARTING)"]}
        )

    async for _ in serve(sock, waiting):
        readiness = await ControlClient(sock).readiness()
    assert readiness == Readiness(ready=False, waiting=["frontend 0/1 healthy (STARTING)"])


class BecomingReady:
    """The part of `Runtime` that `GET /ready` asks: ready once `ready` is set."""

    def __init__(self) -> None:
        self.ready = asyncio.Event()

    def readiness(self) -> Readiness:
        if self.ready.is_set():
            return Readiness(ready=True)
        return Readiness(ready=False, waiting=["app 0/1 healthy (STARTING)"])

    async def wait_ready(self, timeout: float | None = None) -> Readiness:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ready.wait(), timeout)
        return self.readiness()


async def test_readiness_with_wait_is_answered_when_the_twin_becomes_ready(sock: Path) -> None:
    """`fargo up --detach` asks once and hears the change, instead of polling; a bad wait
    is refused; a control plane stopping answers at once."""
    runtime, shutdown = BecomingReady(), asyncio.Event()
    server = ControlServer(cast("Runtime", runtime), sock, shutdown)
    await server.start()
    client = ControlClient(sock, timeout=2)
    try:
        assert not (await client.readiness(wait=0)).ready
        asyncio.get_running_loop().call_later(0.2, runtime.ready.set)
        assert (await client.readiness(wait=MAX_READY_WAIT_SECONDS)).ready  # held, then ready
        with pytest.raises(ControlPlaneErrorAnswer, match=r"400 wait='-1': expected seconds"):
            await client.readiness(wait=-1)
        runtime.ready.clear()
        held = asyncio.ensure_future(client.readiness(wait=MAX_READY_WAIT_SECONDS))
        await asyncio.sleep(0.2)
        shutdown.set()  # `fargo down` while `fargo up --detach` waits
        answer = await asyncio.wait_for(held, MAX_READY_WAIT_SECONDS / 2)  # not held on
        assert answer.failure == "the control plane is stopping"  # it gives up, not asks again
        assert (await client.readiness()).failure == "the control plane is stopping"
    finally:
        await server.stop()
