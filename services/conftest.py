"""Fixtures for the services' tests; puts ``services/`` on ``sys.path``.

The services are imported as top-level packages (``service_kit``,
``backend_public``, ...), exactly as ``python -m backend_public`` sees them in
the image.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from testkit import MetadataServer, PrivateTasks, ServiceProcess, Spawn, free_port


@pytest.fixture(scope="session")
def metadata_server() -> Iterator[MetadataServer]:
    """A fake ECS task metadata endpoint serving any task id."""
    with MetadataServer() as server:
        yield server


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start a service process and wait until it is ready; stopped after the test."""
    started: list[ServiceProcess] = []

    def spawn(
        package: str, *, host: str = "127.0.0.1", env: Mapping[str, str] | None = None
    ) -> ServiceProcess:
        service = ServiceProcess(package, host=host, env=env)
        started.append(service)
        return service.start().wait_ready()

    yield spawn
    for service in started:
        service.stop()


@pytest.fixture(scope="session")
def private_tasks(metadata_server: MetadataServer) -> Iterator[PrivateTasks]:
    """backend-private twice, on 127.0.0.2 and 127.0.0.3, with task ids task-a / task-b."""
    addresses = ("127.0.0.2", "127.0.0.3")
    task_ids = ("task-a", "task-b")
    port = free_port(*addresses)
    services = [
        ServiceProcess(
            "backend_private",
            host=address,
            port=port,
            env={"ECS_CONTAINER_METADATA_URI_V4": metadata_server.base_url(task_id)},
        ).start()
        for address, task_id in zip(addresses, task_ids, strict=True)
    ]
    try:
        for service in services:
            service.wait_ready()
        yield PrivateTasks(port, addresses, task_ids)
    finally:
        for service in services:
            service.stop()
