"""backend-private's routes.

- ``GET /`` — health check;
- ``GET /endpoint`` — ``TaskId: <id>``, which shows callers which task answered.

The id is the last part of ``TaskARN`` from the ECS task metadata endpoint v4
(``$ECS_CONTAINER_METADATA_URI_V4/task``). It is fetched on the first request
and kept: a task's id never changes. Without the endpoint, ``/endpoint``
answers 503 with a message saying why (and retries on the next request).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping

from service_kit.asgi import Request, Response, Service
from service_kit.downstream import Callee, Downstream, DownstreamError, env_callee

DEFAULT_PORT = 8090
METADATA_ENV = "ECS_CONTAINER_METADATA_URI_V4"

HEALTHY = Response.text("OK")


class MetadataUnavailable(Exception):
    """The task id cannot be read; the message says why."""


class TaskMetadata:
    """This task's id, read once from the ECS task metadata endpoint v4."""

    def __init__(self, downstream: Downstream, endpoint: Callee | None) -> None:
        self.downstream = downstream
        self.endpoint = endpoint
        self._task_id: str | None = None
        self._lock = asyncio.Lock()

    async def task_id(self) -> str:
        """The task id, e.g. ``abc123`` for ``arn:aws:ecs:…:task/cluster/abc123``."""
        if self._task_id is None:
            async with self._lock:  # one fetch, however many requests are waiting
                if self._task_id is None:
                    self._task_id = await self._fetch()
        return self._task_id

    async def _fetch(self) -> str:
        if self.endpoint is None:
            raise MetadataUnavailable(
                f"{METADATA_ENV} is not set: the task id comes from the ECS task "
                "metadata endpoint v4, which ECS (or the local twin) provides"
            )
        url = f"{self.endpoint.url}/task"
        try:
            answer = await self.downstream.get(self.endpoint, "/task")
        except DownstreamError as exc:
            raise MetadataUnavailable(
                f"task metadata endpoint {url} is unreachable: {exc.reason}"
            ) from exc
        if answer.status != 200:
            raise MetadataUnavailable(f"task metadata endpoint {url} answered {answer.status}")
        try:
            arn = json.loads(answer.body)["TaskARN"]
        except (ValueError, KeyError, TypeError):
            arn = None
        if not isinstance(arn, str) or "/" not in arn:
            raise MetadataUnavailable(f"task metadata endpoint {url} returned no TaskARN")
        return arn.rpartition("/")[2]


async def health(request: Request) -> Response:
    """``GET /``: the target group's health check."""
    return HEALTHY


def build_app(environ: Mapping[str, str]) -> Service:
    """The ASGI app, configured from ``environ`` (raises ``SettingError``)."""
    # One call in the task's life (its metadata): aiohttp loads then, not at start, where
    # its 0.1-0.15 s of CPU would slow the other tasks starting beside it.
    downstream = Downstream.from_env(environ, preload=False)
    metadata = TaskMetadata(downstream, env_callee(environ, METADATA_ENV))
    answer: Response | None = None

    async def endpoint(request: Request) -> Response:
        """``GET /endpoint``: ``TaskId: <id>``."""
        nonlocal answer
        if answer is None:
            try:
                answer = Response.text(f"TaskId: {await metadata.task_id()}")
            except MetadataUnavailable as exc:
                return Response.json({"error": str(exc)}, 503)
        return answer

    return Service(
        {"/": health, "/endpoint": endpoint},
        on_startup=[downstream.start],
        on_shutdown=[downstream.stop],
    )
