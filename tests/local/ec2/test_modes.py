"""Choosing the network mode: VPC mode where the machine allows it, loopback (and why)
where not, and a refusal when VPC mode is asked for and cannot run."""

from __future__ import annotations

from pathlib import Path

import pytest

from fargo.local.config import ConfigError, TwinConfig
from fargo.local.ec2 import modes


def config(mode: str, tmp_path: Path) -> TwinConfig:
    return TwinConfig(spec_path=tmp_path / "f.yaml", state_dir=tmp_path / "s", network_mode=mode)


def test_auto_is_vpc_mode_where_it_can_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(modes, "vpc_mode_unavailable", lambda: None)
    chosen = modes.choose_network_mode(config("auto", tmp_path))
    assert (chosen.network_mode, chosen.network_note) == ("vpc", None)


def test_auto_falls_back_to_loopback_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(modes, "vpc_mode_unavailable", lambda: "nft not found")
    chosen = modes.choose_network_mode(config("auto", tmp_path))
    assert chosen.network_mode == "loopback"
    assert chosen.network_note == (
        "VPC mode is not available here (nft not found); running in loopback mode"
    )


def test_vpc_asked_for_and_unavailable_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(modes, "vpc_mode_unavailable", lambda: "nft not found")
    with pytest.raises(ConfigError, match="--network vpc: VPC mode is not available here"):
        modes.choose_network_mode(config("vpc", tmp_path))


def test_loopback_asked_for_is_loopback(tmp_path: Path) -> None:
    assert modes.choose_network_mode(config("loopback", tmp_path)).network_mode == "loopback"


def test_a_mode_that_does_not_exist_is_refused_naming_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="choose one of: auto, vpc, loopback"):
        config("bridge", tmp_path)
