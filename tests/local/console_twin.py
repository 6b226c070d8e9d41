"""A twin described by hand, for the console's tests (unit, and the page in Chromium):
the reference spec with its four services, each with healthy tasks by default."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fargo.demo.report import Point
from fargo.local.ecs.task import HealthStatus, TaskStatus
from fargo.local.elb.target_health import TargetState
from fargo.local.status import (
    DiscoveryInstance,
    DiscoveryServiceStatus,
    Endpoints,
    LoadBalancingStatus,
    Readiness,
    RegisteredTarget,
    ServiceState,
    ServiceStatus,
    TargetGroupStatus,
    TaskSummary,
    TwinStatus,
)
from fargo.spec import Spec, load_spec

ROOT = Path(__file__).resolve().parents[2]
SPEC = load_spec(ROOT / "fargo.yaml")
PAGE = "https://127.0.0.1:19443"


def task(service: str, number: int, zone: int, *, healthy: bool = True) -> TaskSummary:
    return TaskSummary(
        id=f"{number:032x}",
        service=service,
        address=f"10.0.{10 + zone}.{number}:8090",
        availability_zone=f"us-east-1{'ab'[zone]}",
        last_status=TaskStatus.RUNNING,
        desired_status=TaskStatus.RUNNING,
        health=HealthStatus.HEALTHY if healthy else HealthStatus.UNHEALTHY,
        pid=1000 + number,
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        stopped_at=None,
        exit_code=None,
        stopped_reason=None,
        log=Path(f"/tmp/{number}.log"),
    )


def service(name: str, tasks: list[TaskSummary], desired: int) -> ServiceStatus:
    healthy = sum(t.health is HealthStatus.HEALTHY for t in tasks)
    return ServiceStatus(
        name=name,
        state=ServiceState.ACTIVE if healthy >= desired else ServiceState.FAILING,
        desired=desired,
        running=len(tasks),
        pending=0,
        healthy=healthy,
        revision=1,
        restarts=0 if healthy >= desired else 3,
        failed_starts=0,
        last_stop_reason=None if healthy else "Essential container in task exited (exit code 1)",
        tasks=tasks,
    )


def twin_status(tmp_path: Path, *, private_healthy: bool = True, page: str = PAGE) -> TwinStatus:
    services = [
        service("frontend", [task("frontend", 1, 0)], 1),
        service("backend-public", [task("backend-public", 2, 1)], 1),
        service(
            "backend-private",
            [task("backend-private", n, n % 2, healthy=private_healthy) for n in (3, 4)],
            2,
        ),
        service("backend-private-with-alb", [task("backend-private-with-alb", 5, 0)], 2),
    ]
    groups = {
        name: TargetGroupStatus(
            health_check=group.health_check,
            deregistration_delay=group.deregistration_delay,
            targets=[
                RegisteredTarget(id=t.id, ip="10.0.10.1", port=80, state=TargetState.HEALTHY)
                for s in services
                if name in SPEC.services[s.name].target_groups
                for t in s.tasks
            ],
        )
        for name, group in SPEC.target_groups.items()
    }
    return TwinStatus(
        spec=ROOT / "fargo.yaml",
        state_dir=tmp_path,
        network_mode="loopback",
        time_scale=10.0,
        pid=1,
        readiness=Readiness(ready=private_healthy),
        endpoints=Endpoints(
            load_balancers={
                "public": [page, "http://127.0.0.1:19080"],
                "internal": ["http://127.0.10.4:8090"],
            },
            load_balancer_dns_names={"public": "public.elb", "internal": "internal.elb"},
            discovery_dns_server="127.0.0.53:53",
            ca_certificate=tmp_path / "ca.pem",
        ),
        services=services,
        load_balancers=LoadBalancingStatus(target_groups=groups),
        discovery=[
            DiscoveryServiceStatus(
                name="private.backend.microservice.local",
                ttl=60,
                routing_policy="MULTIVALUE",
                instances=[
                    DiscoveryInstance(id=t.id, ipv4="10.0.10.3", port=8090, health="HEALTHY")
                    for t in services[2].tasks
                ],
            )
        ],
    )


class HandTwin:
    """A `ConsoleTwin` whose status is written by hand."""

    def __init__(self, tmp_path: Path, page: str = PAGE) -> None:
        self.spec: Spec = SPEC
        self.state_dir = tmp_path
        self.status = twin_status(tmp_path, page=page)

    def describe(self) -> TwinStatus:
        return self.status

    def endpoints(self) -> Endpoints:
        return self.status.endpoints


class PointsRun:
    def __init__(self) -> None:
        self.runs = 0

    async def __call__(self, spec: Spec, status: TwinStatus) -> list[Any]:
        self.runs += 1
        return [Point(2, "two").done(True, task_ids={"a": 1}), Point(1, "one").skip("loopback")]
