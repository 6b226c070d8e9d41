"""The running twins' registry: loopback twins whose VPCs overlap are refused; stale
entries are swept; a host endpoint names the twin that serves it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from fargo.local import twins
from fargo.local.config import TwinConfig
from fargo.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
SPEC = load_spec(ROOT / "fargo.yaml")


@pytest.fixture(autouse=True)
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    return tmp_path / "run" / "fargo-twins"


@pytest.fixture
def other_process() -> Iterator[int]:
    """A live process standing for another twin's control plane."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process.pid
    process.kill()
    process.wait()


def register_as(pid: int, state_dir: Path, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as patched:  # as that process would register itself
        patched.setattr(os, "getpid", lambda: pid)
        config = TwinConfig(spec_path=ROOT / "fargo.yaml", state_dir=state_dir, network_mode=mode)
        twins.register(config, SPEC, ["127.0.0.1:9443"])


@pytest.mark.parametrize(("theirs", "mine"), [("loopback", "loopback"), ("vpc", "vpc"),
                                              ("vpc", "loopback")])  # fmt: skip
def test_twins_with_overlapping_vpcs_clash_and_the_message_names_the_other(
    tmp_path: Path, other_process: int, monkeypatch: pytest.MonkeyPatch, theirs: str, mine: str
) -> None:
    register_as(other_process, tmp_path / "first", theirs, monkeypatch)
    config = TwinConfig(spec_path=ROOT / "fargo.yaml", state_dir=tmp_path / "second",
                        network_mode=mine)  # fmt: skip
    (problem,) = twins.clashes(config, SPEC)
    assert "overlaps the VPC 10.0.0.0/16 of twin 'fargo-demo'" in problem
    assert f"fargo down --state-dir {tmp_path / 'first'}" in problem
    assert twins.holder_of("127.0.0.1:9443") is not None
    assert twins.holder_of("127.0.0.2:9443") is None


def test_twins_whose_vpcs_do_not_overlap_do_not_clash(
    tmp_path: Path, other_process: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_as(other_process, tmp_path / "first", "vpc", monkeypatch)
    other = SPEC.model_copy(
        update={"network": SPEC.network.model_copy(update={"cidr": IPv4Network("10.1.0.0/16")})}
    )
    mine = TwinConfig(spec_path=ROOT / "fargo.yaml", state_dir=tmp_path / "second",
                      network_mode="vpc")  # fmt: skip
    assert twins.clashes(mine, other) == []


@pytest.mark.parametrize(("theirs", "clash"), [("loopback", True), ("vpc", False)])
def test_loopback_twins_of_vpcs_that_differ_only_in_the_first_octet_clash(
    tmp_path: Path, other_process: int, monkeypatch: pytest.MonkeyPatch, theirs: str, clash: bool
) -> None:
    register_as(other_process, tmp_path / "first", theirs, monkeypatch)  # 10.0.0.0/16
    other = SPEC.model_copy(
        update={"network": SPEC.network.model_copy(update={"cidr": IPv4Network("172.0.0.0/16")})}
    )
    mine = TwinConfig(spec_path=ROOT / "fargo.yaml", state_dir=tmp_path / "second",
                      network_mode="loopback")  # fmt: skip
    problems = twins.clashes(mine, other)
    assert bool(problems) is clash
    if clash:
        assert "network.cidr 172.0.0.0/16 maps onto 127.0.0.0/16 in loopback mode" in problems[0]
        assert "the VPC 10.0.0.0/16 of twin 'fargo-demo'" in problems[0]


def test_loopback_twins_of_vpcs_that_differ_in_the_second_octet_do_not_clash(
    tmp_path: Path, other_process: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_as(other_process, tmp_path / "first", "loopback", monkeypatch)
    other = SPEC.model_copy(
        update={"network": SPEC.network.model_copy(update={"cidr": IPv4Network("10.4.0.0/16")})}
    )
    mine = TwinConfig(spec_path=ROOT / "fargo.yaml", state_dir=tmp_path / "second",
                      network_mode="loopback")  # fmt: skip
    assert twins.clashes(mine, other) == []


def test_entries_of_gone_processes_are_swept(
    tmp_path: Path, registry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    register_as(gone.pid, tmp_path / "first", "loopback", monkeypatch)
    assert len(list(registry.glob("*.json"))) == 1
    assert twins.running_twins() == []
    assert list(registry.glob("*.json")) == []


def test_the_registry_folder_is_the_users_alone(registry: Path) -> None:
    twins.registry_dir()
    assert oct(registry.stat().st_mode & 0o777) == "0o700"
