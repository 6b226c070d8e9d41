"""A service's secrets in a real twin: `fargo up --detach` hands each task its values (from
the command's environment and a git-ignored file), and no output of fargo, nor any file of
its state folder, holds them."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.cli import run_fargo
from tests.e2e.conftest import Twin, fargo, make_twin

pytestmark = pytest.mark.slow  # starts a twin

HERE = Path(__file__).parent
DB_PASSWORD = "e2e-db-password-7f3a91c4"
API_TOKEN = "e2e-api-token-b2d84e06"
SPEC = """\
name: secrets
network:
  cidr: 10.7.0.0/16
  subnets: {public: [10.7.0.0/24, 10.7.1.0/24], private: [10.7.10.0/24, 10.7.11.0/24]}
images:
  echo: {context: echo, dockerfile: Dockerfile}
cluster: {name: secrets}
target_groups:
  web: {health_check: {path: /health, interval: 5, timeout: 2}, deregistration_delay: 5}
load_balancers:
  edge:
    scheme: internet-facing
    certificate: {domain: secrets.example.test, hosted_zone: example.test}
    listeners:
      - {port: 9443, protocol: HTTPS, default_action: {forward: web}}
services:
  web:
    image: echo
    port: 7300
    cpu: 256
    memory: 512
    target_groups: [web]
    environment: {SERVICE_NAME: web}
    secrets:
      DB_PASSWORD:
        ssm_parameter: /secrets/db-password
        local: {env: E2E_DB_PASSWORD}
      API_TOKEN:
        secrets_manager: secrets/api-token
        local: {file: .secrets/api_token}
"""
# The echo image, its task first printing what the twin handed it besides its environment:
# the command lines of its process and of the processes that launched it, up to the control
# plane, and its task metadata. Echo itself prints only `GET <path>` per request, so without
# this `fargo logs` would show fargo's own lines only; with it, a secret the twin put into an
# argv or into the metadata, not only into the task's environment, reaches the task's log,
# and so `fargo logs` and the state folder, which the tests below search.
DOCKERFILE = """\
FROM python:3.12-slim
WORKDIR /app
COPY echo_app.py show_start.py /app/
USER 10001
CMD ["python", "show_start.py"]
"""
SHOW_START = """\
import json, os, runpy, urllib.request


def command_lines(levels=8):
    \"""(pid, argv) of this process, then of its parents up to the first running fargo (the
    control plane); only this process's when no fargo is among them: nothing of processes
    that are not the twin's.\"""
    found, pid = [], os.getpid()
    while pid > 1 and len(found) < levels:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                argv = cmdline.read().replace(b"\\0", b" ").decode(errors="replace")
            with open(f"/proc/{pid}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            break
        found.append((pid, argv))
        if "fargo" in argv:
            return found
        pid = parent
    return found[:1]


for pid, argv in command_lines():
    print("argv of", pid, argv)
base = os.environ["ECS_CONTAINER_METADATA_URI_V4"]
for name, path in (("container", ""), ("task", "/task")):
    with urllib.request.urlopen(base + path, timeout=2) as answer:
        print("metadata of the", name, json.dumps(json.load(answer)))
runpy.run_path(os.path.join(os.path.dirname(__file__), "echo_app.py"), run_name="__main__")
"""


@dataclass
class SecretsTwin:
    twin: Twin
    up_output: str  # what `fargo up --detach` printed


@pytest.fixture(scope="module", name="running")
def running_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecretsTwin]:
    """The spec in a git work tree that ignores its secret file; `fargo up --detach` with the
    password only in that command's environment (the test's own has none)."""
    assert "E2E_DB_PASSWORD" not in os.environ
    project = tmp_path_factory.mktemp("secrets")
    shutil.copytree(HERE / "echo", project / "echo")
    (project / "echo" / "Dockerfile").write_text(DOCKERFILE)
    (project / "echo" / "show_start.py").write_text(SHOW_START)
    (project / "fargo.yaml").write_text(SPEC)
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    (project / ".gitignore").write_text(".secrets/\n")
    (project / ".secrets").mkdir()
    (project / ".secrets" / "api_token").write_text(f"{API_TOKEN}\n")
    twin = make_twin(project / "fargo.yaml", project / "state")
    up = run_fargo(
        "up",
        "--detach",
        *twin.up_args(),
        env={**os.environ, "E2E_DB_PASSWORD": DB_PASSWORD},
        timeout=180,
    )
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        yield SecretsTwin(twin, up.stdout + up.stderr)
    finally:
        fargo("down", "--state-dir", str(twin.state_dir), check=False)


def test_a_task_gets_its_secrets_from_fargo_ups_environment_and_a_file(
    running: SecretsTwin,
) -> None:
    state = ["--state-dir", str(running.twin.state_dir)]
    for name, value in (("DB_PASSWORD", DB_PASSWORD), ("API_TOKEN", API_TOKEN)):
        printed = fargo("exec", *state, "web", "--", "printenv", name).stdout
        assert printed == f"{value}\n"  # the user's own command in the task prints it


def test_no_output_of_fargo_shows_a_secret(running: SecretsTwin) -> None:
    twin = running.twin
    state = ["--state-dir", str(twin.state_dir)]
    outputs = {"up --detach": running.up_output}
    for command in (
        ["status", *state],
        ["status", "--json", *state],
        ["ps", *state],
        ["events", *state],
        ["events", "--json", *state],
        ["logs", *state],
        ["demo", "-f", str(twin.spec), "--calls", "2", *state],
        ["demo", "-f", str(twin.spec), "--calls", "2", "--json", *state],
        ["validate", "-f", str(twin.spec)],
    ):
        result = run_fargo(*command, timeout=120)
        assert result.returncode == 0, (command, result.stderr)
        outputs[" ".join(command)] = result.stdout + result.stderr
    assert twin.status().service("web").healthy == 1
    # The task's own start-up lines are among the logs searched (see SHOW_START).
    logs = outputs[f"logs --state-dir {twin.state_dir}"]
    started_as = ("python show_start.py", "metadata of the container", "metadata of the task")
    assert all(line in logs for line in started_as), logs

    for shown_by, output in outputs.items():
        assert DB_PASSWORD not in output and API_TOKEN not in output, shown_by


def test_no_file_of_the_state_folder_holds_a_secret(running: SecretsTwin) -> None:
    """Task records, events, the control plane's log, Caddy's config, the registry."""
    twin = running.twin
    checked = 0
    for path in twin.state_dir.rglob("*"):
        if path.is_file() and not path.is_symlink():
            content = path.read_bytes()
            assert DB_PASSWORD.encode() not in content, path
            assert API_TOKEN.encode() not in content, path
            checked += 1
    assert checked > 10  # logs, pid records, events, config, images
    assert (twin.state_dir / "logs" / "control-plane.log").is_file()
