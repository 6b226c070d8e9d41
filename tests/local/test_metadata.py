"""The task metadata endpoint v4: each task reads its own metadata, and only its own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from fargo.local.ec2.network import NetworkInterface
from fargo.local.ecr.registry import ImageManifest
from fargo.local.ecs.metadata import TaskMetadataEndpoint, task_metadata
from fargo.local.ecs.task import Task, TaskStatus, new_task_id
from fargo.spec import load_spec

SPEC = load_spec(Path(__file__).resolve().parents[2] / "fargo.yaml")  # the reference system


def make_task(tmp_path: Path, address: str) -> Task:
    task_id = new_task_id()
    return Task(
        id=task_id,
        service="app",
        cluster="test",
        region="us-east-1",
        family="md-app",
        revision=1,
        eni=NetworkInterface(
            "eni-0123456789abcdef0", SPEC.network.subnets.private[0], 0, address, address
        ),
        port=8080,
        cpu=256,
        memory=512,
        image=ImageManifest("app", "0" * 64, ("python", "app.py"), tmp_path),
        log_path=tmp_path / f"{task_id}.log",
    )


@pytest.fixture
async def tasks(tmp_path: Path) -> AsyncIterator[tuple[TaskMetadataEndpoint, Task, Task]]:
    one, other = make_task(tmp_path, "10.0.10.4"), make_task(tmp_path, "10.0.10.5")
    by_id = {task.id: task for task in (one, other)}
    endpoint = TaskMetadataEndpoint(lambda task_id: task_metadata(by_id.get(task_id)), "127.0.0.1")
    await endpoint.start()
    try:
        yield endpoint, one, other
    finally:
        await endpoint.stop()


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.text()


async def test_a_tasks_own_uri_answers_its_metadata(
    tasks: tuple[TaskMetadataEndpoint, Task, Task],
) -> None:
    endpoint, one, _ = tasks
    uri = endpoint.uri(one.id, one.metadata_token)
    status, body = await get(uri + "/task")
    assert status == 200 and f'"TaskARN": "{one.arn}"' in body
    status, body = await get(uri)
    assert status == 200 and '"DockerId": "' + one.id in body


async def test_another_tasks_id_opens_nothing_without_its_token(
    tasks: tuple[TaskMetadataEndpoint, Task, Task],
) -> None:
    endpoint, one, other = tasks
    base = f"http://127.0.0.1:{endpoint.port}/v4"
    # what a task that knows the other's id could try: the id alone, its own token, a guess
    for path in (
        other.id,
        f"{other.id}-{one.metadata_token}",
        f"{other.id}-{'0' * 32}",
        f"{other.id}-",
        f"{other.id}-{other.metadata_token[:-1]}",
        f"{other.id}-{other.metadata_token}é",
    ):
        for suffix in ("", "/task", "/stats", "/task/stats"):
            assert (await get(f"{base}/{path}{suffix}"))[0] == 404, path


async def test_a_stopped_tasks_uri_opens_nothing(
    tasks: tuple[TaskMetadataEndpoint, Task, Task],
) -> None:
    endpoint, one, _ = tasks
    uri = endpoint.uri(one.id, one.metadata_token)
    assert (await get(uri + "/task"))[0] == 200
    one.last_status = TaskStatus.STOPPED
    assert (await get(uri + "/task"))[0] == 404
    assert (await get(uri))[0] == 404


def test_each_task_has_its_own_unguessable_token_and_never_shows_it(tmp_path: Path) -> None:
    one, other = make_task(tmp_path, "10.0.10.4"), make_task(tmp_path, "10.0.10.5")
    assert len(one.metadata_token) == 32 and one.metadata_token != other.metadata_token
    assert one.metadata_token not in repr(one)
    assert one.metadata_token not in str(one.metadata())


async def test_in_vpc_mode_a_uri_opens_only_to_its_own_tasks_address(tmp_path: Path) -> None:
    # Tasks share this machine's process table: one may read another's environment, so
    # its URI with the token; in VPC mode the caller's address (its ENI's) must be the task's.
    one, other = make_task(tmp_path, "127.0.0.4"), make_task(tmp_path, "127.0.0.5")
    by_id = {task.id: task for task in (one, other)}
    endpoint = TaskMetadataEndpoint(
        lambda task_id: task_metadata(by_id.get(task_id)), "127.0.0.1", own_address_only=True
    )
    await endpoint.start()
    try:
        uri = endpoint.uri(one.id, one.metadata_token)

        async def status_from(address: str, suffix: str) -> int:
            connector = aiohttp.TCPConnector(local_addr=(address, 0))
            async with (
                aiohttp.ClientSession(connector=connector) as http,
                http.get(uri + suffix) as response,
            ):
                return response.status

        for suffix in ("", "/task", "/stats", "/task/stats"):
            assert await status_from("127.0.0.4", suffix) == 200, suffix
            assert await status_from("127.0.0.5", suffix) == 404, suffix  # the other task
            assert await status_from("127.0.0.1", suffix) == 404, suffix
    finally:
        await endpoint.stop()
