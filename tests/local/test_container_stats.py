"""``/stats`` and ``/task/stats`` of the task metadata endpoint v4: the Docker stats shape,
from the task's real process, as the OpenTelemetry ``awsecscontainermetrics`` receiver
reads it; ``networks`` from the interfaces of a task's own network namespace (VPC mode,
root only here), none for a task on this machine's network (loopback mode)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest
from tests.local.test_metadata import make_task

from fargo.local.ec2.addressing import router_address
from fargo.local.ec2.eni import plug, unplug
from fargo.local.ec2.netns import NetworkNamespace
from fargo.local.ecs import stats
from fargo.local.ecs.metadata import TaskMetadataEndpoint, task_metadata
from fargo.local.ecs.network_stats import parse_net_dev, task_networks
from fargo.local.ecs.task import Task, now

# The receiver's view of a container's stats (its docker_stats.go): each field it reads,
# with the JSON type it decodes (uint64 counters; RFC 3339 times).
CPU_USAGE = {"total_usage": int, "usage_in_kernelmode": int, "usage_in_usermode": int}
CPU_STATS = {"cpu_usage": CPU_USAGE, "online_cpus": int, "system_cpu_usage": int}
MEMORY_STATS = {"usage": int, "max_usage": int, "limit": int, "stats": dict}
CONTAINER_STATS: dict[str, Any] = {
    "name": str,
    "id": str,
    "read": "time",
    "preread": "time",
    "memory_stats": MEMORY_STATS,
    "blkio_stats": {"io_service_bytes_recursive": list},
    "cpu_stats": CPU_STATS,
    "precpu_stats": {"cpu_usage": CPU_USAGE},
}
# With a network of the task's own: per interface, and the ECS agent's rates (the receiver
# sums every interface and dereferences all eight counters and both rates: none may lack).
NETWORK_STATS = {
    f"{way}_{counter}": int
    for way in ("rx", "tx")
    for counter in ("bytes", "packets", "errors", "dropped")
}
NETWORK_RATE_STATS = {"rx_bytes_per_sec": float, "tx_bytes_per_sec": float}
# What the receiver reads of the task metadata (its task_metadata.go) to label the stats.
TASK_METADATA: dict[str, Any] = {
    "Cluster": str,
    "TaskARN": str,
    "Family": str,
    "Revision": str,
    "AvailabilityZone": str,
    "PullStartedAt": "time",
    "PullStoppedAt": "time",
    "KnownStatus": str,
    "LaunchType": str,
    "Limits": {"CPU": float, "Memory": int},
}
CONTAINER_METADATA: dict[str, Any] = {
    "DockerId": str,
    "Name": str,
    "DockerName": str,
    "Image": str,
    "ImageID": str,
    "CreatedAt": "time",
    "StartedAt": "time",
    "KnownStatus": str,
    "ContainerARN": str,
    "LogDriver": str,
    "LogOptions": {"awslogs-group": str, "awslogs-region": str, "awslogs-stream": str},
    "Networks": list,
    "Limits": {"CPU": float, "Memory": int},
}


def accept(document: Any, shape: dict[str, Any], where: str = "") -> None:
    """Decode ``document`` as the consumer does: every field present, of its type."""
    assert isinstance(document, dict), f"{where or 'document'} is not an object"
    for key, kind in shape.items():
        path = f"{where}.{key}" if where else key
        assert key in document, f"{path} is missing"
        value = document[key]
        if isinstance(kind, dict):
            accept(value, kind, path)
        elif kind == "time":
            assert isinstance(value, str), path
            datetime.fromisoformat(value[:26] + "Z" if len(value) > 27 else value)
        elif kind is int:
            assert isinstance(value, int) and not isinstance(value, bool) and value >= 0, path
        elif kind is float:
            assert isinstance(value, int | float), path
        else:
            assert isinstance(value, kind), f"{path}: {value!r} is not {kind.__name__}"


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[tuple[str, Task]]:
    task = make_task(tmp_path, "127.0.0.1")
    task.pull_started_at = now()
    task.pull_stopped_at = now()
    # a real process that spends CPU and holds memory, as a task's container does
    busy = "x = bytearray(32 << 20)\nwhile True:\n    sum(range(10000))\n"
    task.process = await asyncio.create_subprocess_exec(sys.executable, "-c", busy)
    task.started_at = now()
    endpoint = TaskMetadataEndpoint(
        lambda task_id: task_metadata(task if task_id == task.id else None), "127.0.0.1"
    )
    await endpoint.start()
    try:
        yield endpoint.uri(task.id, task.metadata_token), task
    finally:
        await endpoint.stop()
        task.process.kill()
        await task.process.wait()


async def get_json(url: str) -> Any:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def test_task_stats_are_the_docker_stats_of_the_tasks_process(
    running: tuple[str, Task],
) -> None:
    uri, task = running
    first = await get_json(uri + "/task/stats")
    assert list(first) == [task.id]  # by DockerId, as the containers of /task
    accept(first[task.id], CONTAINER_STATS)
    await asyncio.sleep(0.3)
    stats = (await get_json(uri + "/task/stats"))[task.id]
    accept(stats, CONTAINER_STATS)
    memory = stats["memory_stats"]
    assert memory["usage"] > 32 << 20 and memory["limit"] == 512 * 2**20
    # the receiver's CPU %: task CPU delta over machine CPU delta, times the CPUs
    cpu, before = stats["cpu_stats"], stats["precpu_stats"]
    assert stats["preread"] == first[task.id]["read"]
    used = cpu["cpu_usage"]["total_usage"] - before["cpu_usage"]["total_usage"]
    machine = cpu["system_cpu_usage"] - before["system_cpu_usage"]
    percent = used / machine * cpu["online_cpus"] * 100
    assert 5 < percent <= 110, percent  # a busy loop: up to one core (the machine is shared)


async def test_container_stats_and_task_metadata_have_the_receivers_fields(
    running: tuple[str, Task],
) -> None:
    uri, task = running
    accept(await get_json(uri + "/stats"), CONTAINER_STATS)
    document = await get_json(uri + "/task")
    accept(document, TASK_METADATA)
    accept(document["Containers"][0], CONTAINER_METADATA)
    assert document["Containers"][0]["DockerId"] == task.id
    assert document["Containers"][0]["LogOptions"]["awslogs-stream"].endswith("/" + task.id)


async def test_a_task_on_this_machines_network_has_no_networks(
    running: tuple[str, Task],
) -> None:
    uri, task = running
    for _ in range(2):
        stats = await get_json(uri + "/stats")
        # loopback mode: the machine's counters are every process's traffic
        assert "networks" not in stats and "network_rate_stats" not in stats
    assert task.pid is not None and task_networks(task.pid) is None


def test_proc_net_dev_is_read_as_dockers_counters() -> None:
    text = (
        "Inter-|   Receive                                                |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets "
        "errs drop fifo colls carrier compressed\n"
        "    lo:  100  2 0 0 0 0 0 0  100  2 0 0 0 0 0 0\n"
        "  eth0: 5120 40 1 2 0 0 0 0 9871 38 3 4 0 0 0 0\n"
    )
    assert parse_net_dev(text) == {
        "eth0": {
            "rx_bytes": 5120,
            "rx_packets": 40,
            "rx_errors": 1,
            "rx_dropped": 2,
            "tx_bytes": 9871,
            "tx_packets": 38,
            "tx_errors": 3,
            "tx_dropped": 4,
        }
    }
    assert all(
        set(n) == set(NETWORK_STATS)
        for n in parse_net_dev(Path("/proc/self/net/dev").read_text()).values()
    )


SUBNET = IPv4Network("10.213.10.0/24")
SENT = 200 * 1000  # bytes of UDP payload the task sends out of its interface


@pytest.mark.skipif(os.geteuid() != 0, reason="in-process namespaces need root")
async def test_a_task_in_its_own_network_namespace_has_its_interfaces_counters(
    tmp_path: Path,
) -> None:
    router = NetworkNamespace.create("router")
    eni = await asyncio.to_thread(
        plug, router, "eni-5a7e", "task", SUBNET, IPv4Address("10.213.10.4")
    )
    task = make_task(tmp_path, "127.0.0.1")
    task.pull_started_at = task.pull_stopped_at = now()
    gateway = router_address(SUBNET)
    # a real process inside the ENI's namespace that sends datagrams to its gateway
    send = (
        "import socket, time\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        f"for _ in range(200): s.sendto(b'x' * 1000, ('{gateway}', 9))\n"
        "print('sent', flush=True)\n"
        "while True:\n"
        f"    time.sleep(0.02); s.sendto(b'x' * 1000, ('{gateway}', 9))\n"
    )
    task.process = await asyncio.create_subprocess_exec(
        *eni.command_prefix(), sys.executable, "-c", send, stdout=asyncio.subprocess.PIPE
    )
    task.started_at = now()
    endpoint = TaskMetadataEndpoint(
        lambda task_id: task_metadata(task if task_id == task.id else None), "127.0.0.1"
    )
    await endpoint.start()
    try:
        assert task.process.stdout is not None
        assert await asyncio.wait_for(task.process.stdout.readline(), 10) == b"sent\n"
        uri = endpoint.uri(task.id, task.metadata_token)
        first = (await get_json(uri + "/task/stats"))[task.id]
        await asyncio.sleep(0.5)
        stats = await get_json(uri + "/stats")
        for answer in (first, stats):
            accept(answer, CONTAINER_STATS)
            assert list(answer["networks"]) == ["eth0"]  # the ENI; lo left out, as Docker
            accept(answer["networks"]["eth0"], NETWORK_STATS, "networks.eth0")
        assert "network_rate_stats" not in first  # a rate needs a previous read
        eth0 = stats["networks"]["eth0"]
        assert eth0["tx_bytes"] >= SENT and eth0["tx_packets"] >= 200
        assert eth0["tx_bytes"] > first["networks"]["eth0"]["tx_bytes"]  # still sending
        accept(stats["network_rate_stats"], NETWORK_RATE_STATS, "network_rate_stats")
        # about 50 datagrams of 1000 bytes a second (less on a busy machine)
        assert 5_000 < stats["network_rate_stats"]["tx_bytes_per_sec"] < 200_000
    finally:
        await endpoint.stop()
        task.process.kill()
        await task.process.wait()
        await asyncio.to_thread(unplug, router, "eni-5a7e", eni)
        router.close()


def test_a_process_whose_io_counters_are_not_ours_still_has_cpu_and_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A task of a subordinate uid owns its /proc/PID/io (mode 0400): its stats keep CPU
    and memory, with no block I/O, instead of none at all."""

    def refused(self: psutil.Process) -> object:
        raise psutil.AccessDenied(self.pid)

    monkeypatch.setattr(psutil.Process, "io_counters", refused)
    sample = stats._sample(os.getpid())
    assert sample is not None
    assert sample.memory_bytes > 0 and sample.read_bytes == 0 and sample.write_bytes == 0
