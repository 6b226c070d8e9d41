"""The twin as a demonstration world (`fargo.demo.world.World`): ``fargo demo``.

Point 1 reads the control plane's evidence of each task's image pull (VPC mode only:
in loopback mode a task pulls over the host's loopback). Point 5 asks the twin's DNS
server, from inside the VPC in VPC mode. Point 6 reads the tasks' log files.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.message
import dns.rdatatype

from fargo.demo.points import run_points
from fargo.demo.report import Point
from fargo.demo.requests import PublicListener, public_listener
from fargo.local.control.client import ControlClient
from fargo.local.status import TwinStatus
from fargo.spec import Spec

# The demo's requests come from the loopback address the load balancers listen on.
DEMO_SOURCE_IP = "127.0.0.1"
# The services log a request within their flush interval (service_kit: 0.2 s).
LOG_WAIT_SECONDS = 2.0
DNS_QUERIES = 3


async def run_demo(
    spec: Spec, status: TwinStatus, *, calls: int, control: ControlClient | None = None
) -> list[Point]:
    """The seven points, checked against the running twin described by ``status``."""
    return await run_points(spec, Twin(spec, status, control), calls=calls)


class Twin:
    """The running twin, through its status and (VPC mode) its control plane."""

    trusted = "the twin's CA"
    source_ip: str | None = DEMO_SOURCE_IP

    def __init__(self, spec: Spec, status: TwinStatus, control: ControlClient | None) -> None:
        self.status = status
        self.public: PublicListener | None = public_listener(spec, status.endpoints.load_balancers)
        self.ssl_context = ssl.create_default_context(cafile=status.endpoints.ca_certificate)
        # The VPC's addresses answer inside the VPC only: the control plane asks from there.
        self.inside = control if status.network_mode == "vpc" else None

    def desired(self, service: str) -> int:
        return next((s.desired for s in self.status.services if s.name == service), 0)

    def registered_targets(self, target_groups: list[str]) -> int:
        described = self.status.load_balancers.target_groups
        return sum(len(described[g].targets) for g in target_groups if g in described)

    async def image_pulls(self, point: Point) -> Point:
        """Every private task's image pull reached the registry from a NAT gateway's
        Elastic IP (never from the task's own address), and the internet side cannot open
        the task."""
        if self.inside is None:
            return point.skip(
                "needs VPC mode (network namespaces and NAT); the twin runs in "
                f"{self.status.network_mode} mode, where a task pulls its image over the "
                "host's loopback"
            )
        evidence = await self.inside.get("/evidence/image-pulls")
        elastic_ips = set(evidence["nat_gateways"].values())
        tasks = evidence["tasks"]
        problems = []
        for task in tasks:
            saw = set(task["registry_saw"])
            if not saw or not saw <= elastic_ips:
                problems.append(f"{task['task']}: the registry saw {sorted(saw)}, not a NAT's EIP")
            if task["from_internet"] == "connected":
                problems.append(f"{task['task']}: reachable from the internet side")
        return point.done(
            bool(tasks) and not problems,
            nat_gateways=evidence["nat_gateways"],
            registry=evidence["registry"],
            tasks=[
                {
                    "task": t["task"][:12],
                    "service": t["service"],
                    "private_ip": t["private_ip"],
                    "registry_saw": ", ".join(t["registry_saw"]),
                    "digest": t["digest"][:19],
                    "from_internet": t["from_internet"],
                }
                for t in tasks
            ],
            route=tasks[0]["route"] if tasks else [],
            **({"problems": problems} if problems else {}),
            **({} if tasks else {"reason": "no running task in a private subnet"}),
        )

    async def discovery_answers(self, point: Point, name: str) -> list[dict[str, Any]]:
        host, port = self.status.endpoints.discovery_dns_server.rsplit(":", 1)
        point.evidence["dns_server"] = f"{host}:{port}"
        if self.inside is not None:
            asked = await self.inside.get(f"/evidence/dns?name={name}")
            point.evidence["asked_from"] = asked["asked_from"]
            answers: list[dict[str, Any]] = asked["answers"]
            return answers
        answers = []
        for _ in range(DNS_QUERIES):
            response = await dns.asyncquery.udp(
                dns.message.make_query(name, dns.rdatatype.A), host, port=int(port), timeout=2
            )
            for rrset in response.answer:
                answers.append({"ttl": rrset.ttl, "records": [r.to_text() for r in rrset]})
        return answers

    def request_log(self) -> TaskLogFiles:
        return TaskLogFiles(self.status)


class TaskLogFiles:
    """The running tasks' log files (``<service>/<task>.log`` in the state folder)."""

    def __init__(self, status: TwinStatus) -> None:
        self.files = {
            task.log: (service.name, task.id)
            for service in status.services
            for task in service.tasks
        }
        self.offsets: dict[Path, int] = {}

    async def mark(self) -> None:
        self.offsets = {path: _size(path) for path in self.files}

    async def find(self, needle: str) -> tuple[str, str] | None:
        deadline = time.monotonic() + LOG_WAIT_SECONDS
        wanted = needle.encode()
        while True:
            for path, owner in self.files.items():
                if wanted in _read_from(path, self.offsets.get(path, 0)):
                    return owner
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.1)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            return handle.read()
    except OSError:
        return b""
