"""The status model: service states, the view in failure states, the JSON and its schema,
and docs/status.md kept equal to the model."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import jsonschema
import pytest
from tests.cli import ROOT

from fargo.local.cli import commands, status_view
from fargo.local.ecs.task import HealthStatus, TaskStatus
from fargo.local.elb.describe import describe_load_balancers, describe_target_group
from fargo.local.elb.target_health import Target, TargetHealthDescription, TargetState
from fargo.local.status import (
    SCHEMA_VERSION,
    DataPlaneState,
    DataPlaneStatus,
    DiscoveryInstance,
    DiscoveryServiceStatus,
    Endpoints,
    LoadBalancingStatus,
    ServiceState,
    ServiceStatus,
    TaskSummary,
    TwinStatus,
    json_schema,
    readiness_of,
    service_state,
)
from fargo.local.status_doc import MARKER, MarkerMissing, render
from fargo.spec import load_spec

SPEC = load_spec(ROOT / "fargo.yaml")
CRASHED = "Essential container in task exited (exit code 1)"
DOC = ROOT / "docs" / "status.md"
REGENERATE = "regenerate it: python -m fargo.local.status_doc docs/status.md"


def task(service: str, number: int, status: TaskStatus, **changes: object) -> TaskSummary:
    fields: dict[str, object] = {
        "id": f"{number:032x}",
        "service": service,
        "address": f"127.0.10.{number}:8090",
        "availability_zone": "us-east-1a",
        "last_status": status,
        "desired_status": TaskStatus.RUNNING,
        "health": HealthStatus.HEALTHY if status is TaskStatus.RUNNING else HealthStatus.UNKNOWN,
        "pid": 1000 + number,
        "started_at": None,
        "stopped_at": None,
        "exit_code": None,
        "stopped_reason": None,
        "log": Path(f"/state/logs/{service}/{number:032x}.log"),
    }
    return TaskSummary.model_validate({**fields, **changes})


def service(
    name: str, *, desired: int, tasks: list[TaskSummary], **changes: object
) -> ServiceStatus:
    healthy = sum(t.health is HealthStatus.HEALTHY for t in tasks)
    fields: dict[str, object] = {
        "name": name,
        "desired": desired,
        "running": sum(t.last_status is TaskStatus.RUNNING for t in tasks),
        "pending": sum(t.last_status is TaskStatus.PENDING for t in tasks),
        "healthy": healthy,
        "revision": 1,
        "restarts": 0,
        "failed_starts": 0,
        "tasks": tasks,
        "events": [],
    }
    fields.update(changes)
    fields.setdefault(
        "state",
        service_state(
            desired=desired,
            healthy=healthy,
            restarts=int(str(fields["restarts"])),
            failed_starts=int(str(fields["failed_starts"])),
            crash_looping=fields.get("failure") is not None,
            deploying=False,
            stopping=False,
        ),
    )
    return ServiceStatus.model_validate(fields)


def failing_twin() -> TwinStatus:
    """The reference system with backend-private crash-looping: 0 of 2 healthy."""
    services = [
        service("frontend", desired=1, tasks=[task("frontend", 1, TaskStatus.RUNNING)]),
        service(
            "backend-private",
            desired=2,
            tasks=[task("backend-private", 2, TaskStatus.PENDING)],
            restarts=5,
            failed_starts=3,
            failure="task 00ff exited with code 1 at start:\nstarting\ndatabase password missing",
            last_stop_reason=CRASHED,
        ),
    ]
    group = SPEC.target_groups["backend-private-with-alb"]
    target = Target("0" * 31 + "3", "127.0.10.3", 8090)
    unhealthy = TargetHealthDescription(
        target, TargetState.UNHEALTHY, "Target.FailedHealthChecks", "Health checks failed"
    )
    return TwinStatus(
        spec=ROOT / "fargo.yaml",
        state_dir=Path("/state"),
        network_mode="loopback",
        time_scale=0.1,
        pid=4242,
        ready_after_seconds=None,
        readiness=readiness_of(services),
        endpoints=Endpoints(
            load_balancers={"public": ["https://127.0.0.1:8443", "http://127.0.0.1:8080"]},
            load_balancer_dns_names={"public": "fargo-demo-public.elb.fargo.internal"},
            discovery_dns_server="127.0.0.2:53",
            ca_certificate=Path("/state/ca/ca.pem"),
        ),
        services=services,
        load_balancers=LoadBalancingStatus(
            load_balancers=describe_load_balancers(
                SPEC,
                bind={name: "127.0.0.1" for name in SPEC.load_balancers},
                listener_port=lambda lb, port: port + 8000 if port < 1024 else port,
            ),
            target_groups={
                "backend-private-with-alb": describe_target_group(
                    group, routable=[target.address], targets=[unhealthy]
                )
            },
            data_planes=[
                DataPlaneStatus(
                    name="Caddy", load_balancers=["public"], pid=77, restarts=1, config_loads=3
                )
            ],
        ),
        discovery=[
            DiscoveryServiceStatus(
                name="private.backend.microservice.local",
                ttl=60,
                routing_policy="MULTIVALUE",
                instances=[
                    DiscoveryInstance(
                        id="0" * 31 + "2", ipv4="127.0.10.2", port=8090, health="UNHEALTHY"
                    )
                ],
            )
        ],
    )


def section(text: str, heading: str) -> list[str]:
    """The lines of ``text`` after the line ``heading``, up to the next empty line."""
    lines = text.splitlines()
    start = lines.index(heading) + 1
    end = lines.index("", start) if "" in lines[start:] else len(lines)
    return lines[start:end]


# -- the state of a service -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ({"desired": 2, "healthy": 2}, ServiceState.ACTIVE),
        ({"desired": 0, "healthy": 0}, ServiceState.ACTIVE),
        ({"desired": 2, "healthy": 2, "restarts": 4}, ServiceState.ACTIVE),
        ({"desired": 2, "healthy": 0}, ServiceState.STARTING),
        ({"desired": 2, "healthy": 1}, ServiceState.STARTING),
        ({"desired": 2, "healthy": 2, "deploying": True}, ServiceState.DEPLOYING),
        ({"desired": 2, "healthy": 1, "restarts": 1}, ServiceState.DEGRADED),
        ({"desired": 2, "healthy": 1, "failed_starts": 1}, ServiceState.DEGRADED),
        (
            {"desired": 2, "healthy": 1, "failed_starts": 1, "deploying": True},
            ServiceState.DEGRADED,
        ),
        ({"desired": 2, "healthy": 0, "restarts": 5}, ServiceState.FAILING),
        ({"desired": 2, "healthy": 0, "failed_starts": 1}, ServiceState.FAILING),
        (
            {"desired": 2, "healthy": 1, "failed_starts": 3, "crash_looping": True},
            ServiceState.FAILING,
        ),
        ({"desired": 2, "healthy": 0, "restarts": 5, "stopping": True}, ServiceState.DRAINING),
    ],
)
def test_a_service_state_follows_from_its_counts(
    counts: dict[str, int], expected: ServiceState
) -> None:
    arguments = {
        "restarts": 0,
        "failed_starts": 0,
        "crash_looping": False,
        "deploying": False,
        "stopping": False,
        **counts,
    }
    assert service_state(**arguments) is expected  # type: ignore[arg-type]


# -- the view in a failure state ------------------------------------------------------------


def test_a_failing_service_shows_its_counts_state_restarts_and_last_stop() -> None:
    services = section(status_view.render_status(failing_twin()), "services:")

    header, frontend, backend = services[:3]
    assert header.split() == [
        "SERVICE",
        "HEALTHY",
        "STATE",
        "RESTARTS",
        "FAILED",
        "STARTS",
        "LAST",
        "STOP",
    ]
    assert backend.split()[:5] == ["backend-private", "0/2", "FAILING", "5", "3"]
    assert backend.endswith(f"  {CRASHED}")
    assert frontend.split() == ["frontend", "1/1", "ACTIVE", "0", "0", "-"]


def test_the_failure_of_a_crash_loop_is_shown_with_the_log_tail() -> None:
    lines = status_view.render_status(failing_twin()).splitlines()

    at = lines.index("  backend-private is failing: task 00ff exited with code 1 at start:")
    assert lines[at + 1 : at + 3] == ["    starting", "    database password missing"]


def test_readiness_says_what_it_waits_for_and_that_it_will_not_come_by_itself() -> None:
    lines = status_view.render_status(failing_twin()).splitlines()

    at = next(i for i, line in enumerate(lines) if line.startswith("readiness:"))
    assert lines[at] == (
        "readiness: not ready, and not by itself (tasks keep failing at start); waiting for:"
    )
    assert lines[at + 1] == f"  backend-private 0/2 healthy (FAILING; last stop: {CRASHED})"
    assert lines[at + 2] == ""  # frontend is at its desired count


def test_readiness_of_services_at_their_desired_count_is_ready() -> None:
    services = [service("frontend", desired=1, tasks=[task("frontend", 1, TaskStatus.RUNNING)])]

    readiness = readiness_of(services)

    assert readiness.ready and readiness.waiting == [] and readiness.failure is None
    assert status_view.render_readiness(readiness)[0].startswith("readiness: ready")


def test_a_starting_service_is_waited_for_without_a_failure() -> None:
    starting = service("frontend", desired=1, tasks=[task("frontend", 1, TaskStatus.PENDING)])

    readiness = readiness_of([starting])

    assert readiness.waiting == ["frontend 0/1 healthy (STARTING)"]
    assert readiness.failure is None and not readiness.ready


def test_load_balancers_targets_and_discovery_are_shown_typed() -> None:
    text = status_view.render_status(failing_twin())

    target = next(line for line in text.splitlines() if "127.0.10.3:8090" in line)
    assert "unhealthy" in target and "Target.FailedHealthChecks" in target
    assert "Caddy (public): serving, pid 77, 1 restarts, 3 config loads" in text
    assert "listener HTTPS:443 on https://127.0.0.1:8443, ELBSecurityPolicy-TLS13" in text
    assert re.search(r"^\s+1\s+path-pattern /api/\*\s+forward backend-public", text, re.M)
    discovery = section(text, "discovery:")
    assert discovery[0] == "  private.backend.microservice.local (TTL 60, MULTIVALUE)"
    assert discovery[2].split()[1:] == ["127.0.10.2:8090", "UNHEALTHY"]


# -- JSON and its schema --------------------------------------------------------------------


def test_a_data_plane_that_is_down_is_said_instead_of_every_target_healthy() -> None:
    twin = failing_twin()
    ready = twin.model_copy(update={"ready_after_seconds": 1.5})
    assert "every target healthy after 1.50 s" in status_view.render_endpoints(ready)
    down = DataPlaneStatus(
        name="Caddy",
        load_balancers=["public"],
        pid=None,
        restarts=1,
        config_loads=3,
        state=DataPlaneState.DOWN,
        problem="caddy has not answered its admin API for 3 s",
    )
    balancing = twin.load_balancers.model_copy(update={"data_planes": [down]})
    text = status_view.render_endpoints(ready.model_copy(update={"load_balancers": balancing}))
    assert "every target healthy" not in text
    assert "data plane down (public): caddy has not answered its admin API for 3 s" in text


def test_a_discovery_server_that_is_down_is_said_instead_of_every_target_healthy() -> None:
    ready = failing_twin().model_copy(update={"ready_after_seconds": 1.5})
    problem = "discovery DNS server: pid 41 was killed by signal 9"
    endpoints = ready.endpoints.model_copy(update={"discovery_dns_problem": problem})
    text = status_view.render_endpoints(ready.model_copy(update={"endpoints": endpoints}))
    assert "every target healthy" not in text
    assert f"127.0.0.2:53 (down: {problem}; starting it again)" in text


def test_the_json_comes_back_as_the_same_model() -> None:
    status = failing_twin()
    served = json.loads(status.model_dump_json())

    assert served["schema_version"] == SCHEMA_VERSION == 1
    assert served["services"][1]["state"] == "FAILING"
    assert served["services"][1]["last_stop_reason"] == CRASHED
    assert TwinStatus.model_validate(served) == status
    assert TwinStatus.model_validate(served).model_dump(mode="json") == served


def test_the_json_satisfies_the_published_schema() -> None:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)

    jsonschema.Draft202012Validator(schema).validate(json.loads(failing_twin().model_dump_json()))


def test_the_schema_rejects_a_service_state_it_does_not_define() -> None:
    served = json.loads(failing_twin().model_dump_json())
    served["services"][0]["state"] = "UP"

    with pytest.raises(jsonschema.ValidationError, match="'UP' is not one of"):
        jsonschema.Draft202012Validator(json_schema()).validate(served)


def test_the_schema_requires_every_field_the_output_always_has() -> None:
    schema = json_schema()
    service_schema = schema["$defs"]["ServiceStatus"]  # type: ignore[index]

    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["required"]) == set(TwinStatus.model_fields)  # type: ignore[arg-type]
    assert service_schema["additionalProperties"] is False
    assert {"state", "restarts", "last_stop_reason", "failed_starts"} <= set(
        service_schema["required"]
    )


def test_fargo_status_json_schema_prints_the_schema_without_a_twin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = argparse.Namespace(state_dir=tmp_path / "none", json=False, json_schema=True)

    assert commands.status_command(args) == 0

    assert json.loads(capsys.readouterr().out) == json_schema()


# -- docs/status.md -------------------------------------------------------------------------


def test_docs_status_md_is_generated_from_the_model() -> None:
    document = DOC.read_text(encoding="utf-8")

    assert render(document) == document, REGENERATE


def test_the_schema_block_of_docs_status_md_is_the_models_schema() -> None:
    document = DOC.read_text(encoding="utf-8")
    block = document.split(MARKER, 1)[1].split("```json\n", 1)[1].split("\n```", 1)[0]

    assert json.loads(block) == json_schema(), REGENERATE


def test_the_doc_lists_every_field_of_every_model() -> None:
    generated = DOC.read_text(encoding="utf-8").split(MARKER, 1)[1]
    headings = {"fargo status --json": TwinStatus, "ServiceStatus": ServiceStatus}

    for heading, model in {**headings, "TaskSummary": TaskSummary}.items():
        section = generated.split(f"### {heading}\n", 1)[1].split("\n### ", 1)[0]
        for field in model.model_fields:
            assert f"| `{field}` |" in section, (heading, field)


def test_a_document_without_the_marker_is_refused() -> None:
    with pytest.raises(MarkerMissing, match="generated part starts"):
        render("# status\n")
