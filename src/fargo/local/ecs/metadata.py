"""The ECS task metadata endpoint v4, served by the control plane.

Each task gets ``ECS_CONTAINER_METADATA_URI_V4=http://<host>:<port>/v4/<task-id>-<token>``;
``GET $ECS_CONTAINER_METADATA_URI_V4`` answers the container's metadata and
``GET $ECS_CONTAINER_METADATA_URI_V4/task`` the task's, with the fields AWS
documents for Fargate that apply here; ``GET $ECS_CONTAINER_METADATA_URI_V4/stats``
the container's stats and ``.../task/stats`` every container's (by ``DockerId``), in
the Docker stats shape, from the process's real counters (`fargo.local.ecs.stats`).

The token is the task's own random secret, as AWS puts a random part after the id:
every task can reach the endpoint, and task ids are no secret (they are in target
health, ``/endpoint`` answers, logs), so the id alone must not open another task's
metadata. A wrong or missing token, an unknown task and a stopped task all get the
same 404; the endpoint logs no request, so no token reaches a log.

In VPC mode (``own_address_only``) a URI opens its task's metadata only to a request from
that task's own address (its ENI's), as AWS's endpoint answers only inside the task: the
twin's tasks share this machine's process table, where one task could read another's
environment, and with it its URI. Loopback mode gives tasks no addresses of their own to
call from (their calls leave from 127.0.0.1), so there the token alone decides.
"""

from __future__ import annotations

import asyncio
import hmac
import socket
from collections.abc import Callable

from aiohttp import web

from fargo.local.ec2.sockets import ServerSocketFactory, bind_problem, bind_socket
from fargo.local.ecs.stats import ContainerStatsReader
from fargo.local.ecs.task import Task, TaskStatus

# task id → (its metadata token, the task), or None: unknown or stopped.
TaskLookup = Callable[[str], tuple[str, Task] | None]


def task_metadata(task: Task | None) -> tuple[str, Task] | None:
    """What the endpoint answers for ``task`` (a `TaskLookup` result): nothing once stopped."""
    if task is None or task.last_status is TaskStatus.STOPPED:
        return None  # a stopped task's URI opens nothing any more
    return task.metadata_token, task


class TaskMetadataEndpoint:
    """``lookup(task_id)`` returns the task's token and v4 document, or None if the task is
    unknown or stopped."""

    def __init__(
        self,
        lookup: TaskLookup,
        host: str,
        port: int = 0,
        *,
        bind: ServerSocketFactory = bind_socket,
        own_address_only: bool = False,
    ) -> None:
        self._lookup = lookup
        self._own_address_only = own_address_only
        self._host = host
        self._port = port
        self._bind = bind
        self._runner: web.AppRunner | None = None
        self._stats = ContainerStatsReader()
        self.port = port

    name = "task metadata endpoint"

    def validate(self) -> list[str]:
        if self._bind is not bind_socket:
            return []  # the network mode binds it, in its own namespace
        problem = bind_problem(self._host, self._port, "the task metadata endpoint")
        return [problem] if problem else []

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/v4/{credential}", self._container)
        app.router.add_get("/v4/{credential}/task", self._task)
        app.router.add_get("/v4/{credential}/stats", self._container_stats)
        app.router.add_get("/v4/{credential}/task/stats", self._task_stats)
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

    def uri(self, task_id: str, token: str) -> str:
        """The task's ``ECS_CONTAINER_METADATA_URI_V4``: its id, then its secret token."""
        return f"http://{self._host}:{self.port}/v4/{task_id}-{token}"

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    def _found(self, request: web.Request) -> Task:
        task_id, _, token = request.match_info["credential"].rpartition("-")
        found = self._lookup(task_id) if task_id and token else None
        # Compared in constant time, as bytes (compare_digest refuses non-ASCII text).
        if found is None or not hmac.compare_digest(found[0].encode(), token.encode()):
            raise web.HTTPNotFound(text="unknown task\n")
        if self._own_address_only and request.remote != found[1].ip:
            raise web.HTTPNotFound(text="unknown task\n")  # another task's URI: as unknown
        return found[1]

    async def _task(self, request: web.Request) -> web.Response:
        return web.json_response(self._found(request).metadata())

    async def _container(self, request: web.Request) -> web.Response:
        containers = self._found(request).metadata()["Containers"]
        return web.json_response(containers[0])

    async def _container_stats(self, request: web.Request) -> web.Response:
        task = self._found(request)
        # Reading the process tree's counters blocks: off the event loop.
        stats = await asyncio.to_thread(self._stats.read, task)
        return web.json_response(stats or {})

    async def _task_stats(self, request: web.Request) -> web.Response:
        task = self._found(request)
        stats = await asyncio.to_thread(self._stats.read, task)
        return web.json_response({task.id: stats})
