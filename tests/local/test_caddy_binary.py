"""The Caddy binary: too old is refused before it runs; it never sees the user's secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from fargo.local.caddy.binary import (
    MINIMUM_CADDY_VERSION,
    caddy_environment,
    caddy_executable,
    check_version,
    parse_version,
)
from fargo.local.caddy.process import CaddyError, CaddyProcess, CaddyTooOld


def fake_caddy(directory: Path, version: str) -> Path:
    """A `caddy` that reports ``version`` and, asked to run, writes its environment and fails."""
    script = directory / "fake-caddy"
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = version ]; then echo "{version}"; exit 0; fi\n'
        f"env > {directory}/caddy-env\n"
        "exit 1\n"
    )
    script.chmod(0o755)
    return script


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v2.11.7 h1:yj0Y4fYZGPkSvibBJ1sTWE33xC0fxztVyXEW5iIdUT4=", (2, 11, 7)),
        ("v2.8.4", (2, 8, 4)),
        ("2.12.0-beta.1", (2, 12, 0)),
        ("(devel)", None),
        ("", None),
    ],
)
def test_parse_version(text: str, expected: tuple[int, int, int] | None) -> None:
    assert parse_version(text) == expected


async def test_the_installed_caddy_is_new_enough() -> None:
    await check_version(caddy_executable())


async def test_an_old_caddy_is_refused_before_it_runs(state_dir: Path) -> None:
    caddy = CaddyProcess(state_dir, executable=fake_caddy(state_dir, "v2.8.4 h1:abc="))
    minimum = ".".join(map(str, MINIMUM_CADDY_VERSION))
    with pytest.raises(CaddyTooOld, match=rf"v2\.8\.4.*{minimum} or later.*pip install -U"):
        await caddy.start()
    assert not (state_dir / "caddy-env").exists()
    assert caddy.pid is None
    await caddy.stop()


async def test_caddy_gets_an_allowlisted_environment(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("GITHUB_TOKEN", "token")
    monkeypatch.setenv("LANG", "C.UTF-8")
    caddy = CaddyProcess(state_dir, executable=fake_caddy(state_dir, "v2.11.7"))
    with pytest.raises(CaddyError, match="exited with status 1"):
        await caddy.start()
    await caddy.stop()
    lines = (state_dir / "caddy-env").read_text().splitlines()
    env = dict(line.split("=", 1) for line in lines if "=" in line)
    assert "AWS_SECRET_ACCESS_KEY" not in env and "GITHUB_TOKEN" not in env
    assert env["LANG"] == "C.UTF-8"
    assert env["HOME"] == str(state_dir / "caddy")
    assert env["XDG_DATA_HOME"] == str(state_dir / "caddy" / "data")


def test_environment_without_a_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token")
    monkeypatch.setenv("TZ", "UTC")
    env = caddy_environment(None)
    assert env["TZ"] == "UTC"
    assert "AWS_SESSION_TOKEN" not in env and "HOME" not in env
