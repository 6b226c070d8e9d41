"""The command line as a whole: one meaning per short option, examples in every command's
help, ``--version`` and shell completion."""

from __future__ import annotations

import argparse
import collections
from importlib.metadata import version

from tests.cli import run_fargo

from fargo.cli import _parser


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = _parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_each_short_option_means_one_thing_in_every_command() -> None:
    meanings: dict[str, set[str]] = collections.defaultdict(set)
    for command in subcommands().values():
        for action in command._actions:
            for option in action.option_strings:
                if len(option) == 2 and option != "-h":
                    meanings[option].add(action.dest)
    assert meanings["-f"] == {"file"}
    assert {option: dests for option, dests in meanings.items() if len(dests) > 1} == {}


def test_every_command_ends_its_help_with_examples() -> None:
    for name, command in subcommands().items():
        assert command.epilog and command.epilog.startswith("examples:\n"), name
        assert f"fargo {name}" in command.epilog, name


def test_version_is_the_installed_distributions() -> None:
    result = run_fargo("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"fargo {version('fargo')}"


def test_bash_completion_knows_every_command_and_option() -> None:
    result = run_fargo("completion", "bash")
    assert result.returncode == 0
    for name in subcommands():
        assert name in result.stdout, name
    assert "--state-dir" in result.stdout and "--no-wait" in result.stdout
