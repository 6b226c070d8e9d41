"""`fargo synth` and `fargo deploy` as a user runs them (real CLI, subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.cli import run_fargo


def fargo(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_fargo(*args, env=env, timeout=300)


@pytest.mark.slow  # a synth in a fresh interpreter
def test_synth_writes_the_three_stacks(tmp_path: Path) -> None:
    result = fargo("synth", "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    for stack in ("network", "registry", "app"):
        template = json.loads((tmp_path / "out" / f"fargo-demo-{stack}.template.json").read_text())
        assert template["Resources"]
        assert f"fargo-demo-{stack}" in result.stdout


def test_deploy_without_credentials_docker_or_cdk_names_each_and_creates_nothing(
    tmp_path: Path,
) -> None:
    env = {
        "PATH": str(Path(sys.executable).parent),  # no docker, no cdk on PATH
        "HOME": str(tmp_path),  # no ~/.aws, no cached CDK CLI
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }
    result = fargo("deploy", env={**{k: v for k, v in os.environ.items() if k == "LANG"}, **env})
    assert result.returncode != 0
    text = (result.stdout + result.stderr).lower()
    assert "credentials" in text and "docker" in text and "cdk" in text
    assert "traceback" not in text


def test_synth_refuses_what_the_cloud_cannot_do_naming_the_file_it_was_given(
    tmp_path: Path,
) -> None:
    reference = Path(__file__).resolve().parents[1] / "fargo.yaml"
    spec = tmp_path / "no-nat.yaml"
    spec.write_text(reference.read_text().replace("nat_gateways: 1", "nat_gateways: 0"))

    result = fargo("synth", "-f", str(spec), "-o", str(tmp_path / "out"))

    assert result.returncode == 1
    head, problem, tracing = result.stderr.splitlines()
    assert head == f"{spec}: 2 problems in the spec"
    assert problem.startswith(f"  {spec}:12:3: network.nat_gateways: ")
    # The reference traces (tracing: xray): its daemons would need the xray endpoint too.
    assert f"{spec}:" in tracing and ": tracing: the X-Ray daemon" in tracing
    assert not (tmp_path / "out").exists()


def test_demo_cloud_without_credentials_says_how_to_give_them(tmp_path: Path) -> None:
    env = {
        "PATH": str(Path(sys.executable).parent),
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",  # no instance profile to wait for
    }
    result = fargo("demo", "--cloud", env=env)
    assert result.returncode == 2
    assert "fargo demo --cloud: no AWS credentials (none found)" in result.stderr
    assert "Traceback" not in result.stderr
