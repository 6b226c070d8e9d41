"""The Makefile's targets pass ``ARGS`` on, as the README says (``make status ARGS=--json``).

Read with ``make -n``: make prints each command it would run and runs none (it would run
recipe lines marked ``+`` or naming ``$(MAKE)``; the Makefile has none, checked below), so
no virtualenv is made, nothing is installed and no twin starts.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAKEFILE = ROOT / "Makefile"
PROBE = "--fargo-args-probe"
# Every target a user runs, and the command of its recipe that gets ARGS.
TAKES_ARGS = {
    "up": "/fargo up",
    "down": "/fargo down",
    "status": "/fargo status",
    "demo": "/fargo demo",
    "synth": "/fargo synth",
    "lint": "/ruff check",
    "typecheck": "/mypy",
    "test": "/pytest",
    "bench": "bench/run.py",
}
# Targets without a command to pass ARGS to: `clean` removes folders; `system-packages`
# and `bytecode` are steps of other targets.
NO_ARGS = {"clean", "system-packages", "bytecode"}


def dry_run(*args: str) -> list[str]:
    """The commands ``make -n ARGS…`` prints, run in the project's folder."""
    # An outer make's (`make test` running these tests) variables and flags stay outside.
    outer = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "ARGS", "CHECK_ARGS"}
    env = {key: value for key, value in os.environ.items() if key not in outer}
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def commands_of(lines: list[str], command: str) -> list[str]:
    return [line for line in lines if command in line]


def test_every_target_is_probed_or_said_to_take_no_args() -> None:
    phony = re.search(r"^\.PHONY:(.*)$", MAKEFILE.read_text(), re.MULTILINE)
    assert phony is not None
    assert set(phony[1].split()) == TAKES_ARGS.keys() | NO_ARGS


def test_a_dry_run_runs_no_recipe() -> None:
    """``make -n`` still runs a recipe line that starts with ``+`` or names ``$(MAKE)``: the
    probes below would run it (install, start a twin)."""
    recipe_lines = [line for line in MAKEFILE.read_text().splitlines() if line.startswith("\t")]
    assert recipe_lines
    for line in recipe_lines:
        assert not line.lstrip("\t@-").startswith("+"), line
        assert "$(MAKE)" not in line and "${MAKE}" not in line, line


@pytest.mark.parametrize("target", sorted(TAKES_ARGS))
def test_target_passes_args_to_its_command(target: str) -> None:
    commands = commands_of(dry_run(target, f"ARGS={PROBE}"), TAKES_ARGS[target])
    assert commands and all(PROBE in command for command in commands), commands


def test_make_test_passes_args_to_pytest_only() -> None:
    """`make test ARGS="-m 'not slow'"` gives pytest the option; ruff and mypy, which `test`
    runs first, check as without ARGS."""
    lines = dry_run("test", f"ARGS={PROBE}")
    checks = commands_of(lines, "/ruff ") + commands_of(lines, "/mypy")
    assert len(checks) == 3, lines  # ruff check, ruff format --check, mypy
    assert not any(PROBE in line for line in checks), checks
    assert any(PROBE in line for line in commands_of(lines, "/pytest")), lines


def test_lint_and_typecheck_without_args_check_what_they_always_did() -> None:
    """The current folder for ruff (its default), pyproject.toml's files for mypy."""
    lines = dry_run("lint", "typecheck")
    assert [line.split()[1:] for line in commands_of(lines, "/ruff ")] in (
        [["check"], ["format", "--check", "."]],
        [["check", "."], ["format", "--check", "."]],
    ), lines
    assert [line.split()[1:] for line in commands_of(lines, "/mypy")] == [[]], lines
