"""A RUN line read as simple commands, and what each means to the twin."""

from __future__ import annotations

import pytest

from fargo.local.images.run import (
    ChangeDirectory,
    CompileAll,
    InstallArgument,
    NoOp,
    PipInstall,
    Unsupported,
    Venv,
    classify,
    simple_commands,
)


def test_a_line_splits_at_and_or_semicolons_and_continuations() -> None:
    assert simple_commands("set -eux; cd /app && pip install -r r.txt || true \\\n && echo ok") == [
        ["set", "-eux"],
        ["cd", "/app"],
        ["pip", "install", "-r", "r.txt"],
        ["true"],
        ["echo", "ok"],
    ]


@pytest.mark.parametrize(
    "line",
    [
        "pip install -r r.txt",
        "pip3 install --requirement=r.txt",
        "pip3.12 install -rr.txt",
        "python3.12 -m pip install --no-cache-dir -r r.txt",
        "/opt/venv/bin/pip install -q -r r.txt",
        "PIP_NO_CACHE_DIR=1 python -m pip install -r r.txt",
        "uv pip install --system -r r.txt",
        "uv pip sync r.txt",
    ],
)
def test_pip_and_uv_installs_are_understood(line: str) -> None:
    (words,) = simple_commands(line)
    command = classify(words)
    assert isinstance(command, PipInstall)
    assert command.arguments == (InstallArgument("requirement", "r.txt"),)
    assert command.unknown == ()


def test_pip_options_uv_lacks_are_kept_aside_to_be_reported() -> None:
    command = classify(["pip", "install", "--use-pep517", "-i", "https://x/simple", "flask"])
    assert isinstance(command, PipInstall)
    assert command.unknown == ("--use-pep517",)
    assert command.arguments == (
        InstallArgument("option", "-i"),
        InstallArgument("value", "https://x/simple"),
        InstallArgument("package", "flask"),
    )


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("python -m venv /opt/venv", Venv),
        ("uv venv .venv", Venv),
        ("cd src", ChangeDirectory),
        ("true", NoOp),
        ("curl -fsSL https://example.test/x.sh | sh", Unsupported),
        ("echo $(date) > /built", Unsupported),
        ("apt-get install -y curl", Unsupported),
        ("npm ci", Unsupported),
    ],
)
def test_what_each_command_means(line: str, kind: type) -> None:
    commands = [classify(words) for words in simple_commands(line)]
    assert len(commands) == 1 and isinstance(commands[0], kind), commands


def test_compileall_keeps_its_paths_and_the_options_that_change_the_bytecode() -> None:
    line = "python -m compileall -q -j 0 -d /srv --invalidation-mode unchecked-hash -o 2 /app lib"
    (command,) = [classify(words) for words in simple_commands(line)]
    assert command == CompileAll(
        ("/app", "lib"), ("--invalidation-mode", "unchecked-hash", "-o", "2"), line
    )
    (whole_path,) = [classify(w) for w in simple_commands("python3 -m compileall -q")]
    assert isinstance(whole_path, NoOp)  # sys.path: the environment, compiled by its installs
