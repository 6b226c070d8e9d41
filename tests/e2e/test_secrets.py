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
    outputs = [running.up_output]
    for command in (
        ["status", *state],
        ["status", "--json", *state],
        ["events", *state],
        ["events", "--json", *state],
        ["logs", *state],
        ["demo", "-f", str(twin.spec), "--calls", "2", *state],
        ["demo", "-f", str(twin.spec), "--calls", "2", "--json", *state],
        ["validate", "-f", str(twin.spec)],
    ):
        result = run_fargo(*command, timeout=120)
        assert result.returncode == 0, (command, result.stderr)
        outputs += [result.stdout, result.stderr]
    assert twin.status().service("web").healthy == 1

    for output in outputs:
        assert DB_PASSWORD not in output and API_TOKEN not in output


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
