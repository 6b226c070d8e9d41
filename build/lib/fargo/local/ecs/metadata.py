"""The ECS task metadata endpoint v4, served by the control plane.

Each task gets ``ECS_CONTAINER_METADATA_URI_V4=http://<host>:<port>/v4/<task-id>``;
``GET $ECS_CONTAINER_METADATA_URI_V4`` answers the container's metadata and
``GET $ECS_CONTAINER_METADATA_URI_V4/task`` the task's, with the fields AWS
documents for Fargate that apply here.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from aiohttp import web

from fargo.local.ec2.sockets import ServerSocketFactory, bind_problem, bind_socket

TaskLookup = Callable[[str], dict[str, Any] | None]


class TaskMetadataEndpoint:
    """``lookup(task_id)`` returns the task's v4 document or None for unknown tasks."""

    def __init__(
        self,
        lookup: TaskLookup,
        host: str,
        port: int = 0,
        *,
        bind: ServerSocketFactory = bind_socket,
    ) -> None:
        self._lookup = lookup
        self._host = host
        self._port = port
        self._bind = bind
        self._runner: web.AppRunner | None = None
        self.port = port

    name = "task metadata endpoint"

    def validate(self) -> list[str]:
        if self._bind is not bind_socket:
            return []  # the network mode binds it, in its own namespace
        problem = bind_problem(self._host, self._port, "the task metadata endpoint")
        return [problem] if problem else []

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/v4/{task_id}", self._container)
        app.router.add_get("/v4/{task_id}/task", self._task)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        try:
            sock = self._bind(socket.SOCK_STREAM, self._host, self._port)
            site = web.SockSite(self._runner, sock)
            await site.start()
        except OSError as err:
            await self.stop()
            raise OSError(
                err.errno, f"task metadata endpoint: cannot listen on {self._host}:{self._port}"
            ) from err
        server = site._server
        sockets = getattr(server, "sockets", None)
        if sockets:
            self.port = sockets[0].getsockname()[1]

    def uri(self, task_id: str) -> str:
        return f"http://{self._host}:{self.port}/v4/{task_id}"

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    def _document(self, request: web.Request) -> dict[str, Any]:
        document = self._lookup(request.match_info["task_id"])
        if document is None:
            raise web.HTTPNotFound(text="unknown task\n")
        return document

    async def _task(self, request: web.Request) -> web.Response:
        return web.json_response(self._document(request))

    async def _container(self, request: web.Request) -> web.Response:
        containers = self._document(request)["Containers"]
        return web.json_response(containers[0])
