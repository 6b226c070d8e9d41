"""backend-private over real sockets: ``/endpoint`` reads the task id from metadata."""

from __future__ import annotations

import json

import httpx
import pytest

from testkit import MetadataServer, ServiceProcess, Spawn, free_port


@pytest.fixture
def private(spawn: Spawn, metadata_server: MetadataServer) -> ServiceProcess:
    return spawn(
        "backend_private",
        env={"ECS_CONTAINER_METADATA_URI_V4": metadata_server.base_url("abc123")},
    )


def test_health_check_answers_200(private: ServiceProcess) -> None:
    assert httpx.get(private.url + "/").status_code == 200


def test_endpoint_answers_the_task_id_from_the_task_arn(private: ServiceProcess) -> None:
    response = httpx.get(private.url + "/endpoint")

    assert response.status_code == 200
    assert response.text == "TaskId: abc123"
    assert response.headers["content-type"].startswith("text/plain")


def test_task_id_is_fetched_once(private: ServiceProcess, metadata_server: MetadataServer) -> None:
    fetched_before = metadata_server.requests.count("/v4/abc123/task")

    for _ in range(3):
        assert httpx.get(private.url + "/endpoint").text == "TaskId: abc123"

    assert metadata_server.requests.count("/v4/abc123/task") == fetched_before + 1


def test_unknown_path_is_404(private: ServiceProcess) -> None:
    assert httpx.get(private.url + "/nope").status_code == 404


def test_one_json_log_line_per_request(private: ServiceProcess) -> None:
    httpx.get(private.url + "/endpoint", headers={"X-Amzn-Trace-Id": "Root=1-abc-def"})
    httpx.get(private.url + "/nope")

    traced = json.loads(private.wait_for_stdout(lambda line: '"/endpoint"' in line))
    untraced = json.loads(private.wait_for_stdout(lambda line: '"/nope"' in line))

    assert traced["method"] == "GET"
    assert traced["status"] == 200
    assert traced["trace_id"] == "Root=1-abc-def"
    assert isinstance(traced["duration_ms"], float)
    assert traced["duration_ms"] >= 0
    assert (untraced["status"], untraced["trace_id"]) == (404, None)


def test_without_metadata_variable_endpoint_is_503_saying_why(spawn: Spawn) -> None:
    private = spawn("backend_private")

    response = httpx.get(private.url + "/endpoint")

    assert response.status_code == 503
    assert "ECS_CONTAINER_METADATA_URI_V4 is not set" in response.json()["error"]
    assert httpx.get(private.url + "/").status_code == 200  # still healthy


@pytest.mark.slow  # waits out the metadata client's timeout
def test_unreachable_metadata_endpoint_is_503_naming_it(spawn: Spawn) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v4/abc123"
    private = spawn(
        "backend_private",
        env={"ECS_CONTAINER_METADATA_URI_V4": dead, "DOWNSTREAM_CONNECT_TIMEOUT": "1"},
    )

    response = httpx.get(private.url + "/endpoint")

    assert response.status_code == 503
    assert f"{dead}/task is unreachable" in response.json()["error"]


def test_malformed_setting_stops_the_process_with_a_message() -> None:
    service = ServiceProcess(
        "backend_private", env={"ECS_CONTAINER_METADATA_URI_V4": "ftp://169.254.170.2/v4"}
    ).start()
    assert service.process is not None

    assert service.process.wait(15) == 2
    service.wait_for_stderr(lambda line: "ECS_CONTAINER_METADATA_URI_V4='ftp://" in line)
