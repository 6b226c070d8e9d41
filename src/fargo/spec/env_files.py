"""A service's ``env_file:``: environment variables from files in compose's format.

    services:
      web:
        env_file: [web.env, local.env]     # or one path; relative to the spec
        environment: {MODE: production}    # wins over a file's MODE

Each file holds ``KEY=VALUE`` lines (``export KEY=VALUE`` too), ``#`` comments, blank
lines, values in single quotes (literal) or double quotes (escapes such as ``\\n``), as
`docker compose` reads them; no ``${…}`` interpolation. A later file wins over an
earlier one, ``environment`` over every file. The values join the service's environment
in both worlds: the cloud writes them into the task definition, the twin gives them to
the tasks — so every check on ``environment`` (names, references, reserved names,
values that look like secrets) applies to them, reported at the ``env_file`` entry with
the file's own line.

    merged, problems, origins = read_env_files(spec, spec_dir)
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from dotenv.parser import parse_stream

from fargo.spec.errors import Loc, Problem
from fargo.spec.model import Spec
from fargo.spec.secrets import is_env_name


@dataclass(frozen=True)
class Origin:
    """Where an environment variable came from: an env file's line."""

    entry: Loc  # ("services", name, "env_file", index)
    file: str
    line: int

    def describe(self) -> str:
        return f"{self.file}:{self.line}"


Origins = dict[tuple[str, str], Origin]  # (service, variable) → where it was set


def read_env_files(spec: Spec, spec_dir: Path) -> tuple[Spec, list[Problem], Origins]:
    """``spec`` with each service's env files merged into its environment, the problems
    with the files, and where each variable from a file came from."""
    problems: list[Problem] = []
    origins: Origins = {}
    services = {}
    for name, service in spec.services.items():
        if not service.env_file:
            services[name] = service
            continue
        values: dict[str, str] = {}
        for index, file in enumerate(service.env_file):
            entry: Loc = ("services", name, "env_file", index)
            for key, value, line in _read(spec_dir / file, file, entry, problems):
                values[key] = value
                origins[(name, key)] = Origin(entry, file, line)
        for key in service.environment:
            origins.pop((name, key), None)  # environment wins
        environment = {**values, **service.environment}
        services[name] = service.model_copy(update={"environment": environment})
    return spec.model_copy(update={"services": services}), problems, origins


def relocate(problem: Problem, origins: Origins) -> Problem:
    """A problem with a variable that came from an env file, moved to its ``env_file``
    entry and naming the file's line."""
    loc = problem.loc
    if len(loc) >= 4 and loc[0] == "services" and loc[2] == "environment":
        origin = origins.get((str(loc[1]), str(loc[3])))
        if origin is not None:
            message = f"{loc[3]} ({origin.describe()}): {problem.message}"
            return Problem(origin.entry, message, hint=problem.hint)
    return problem


def _read(path: Path, file: str, entry: Loc, problems: list[Problem]) -> list[tuple[str, str, int]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.append(
            Problem(entry, f"{file}: no such file", hint="create it, or remove it from env_file")
        )
        return []
    except UnicodeDecodeError as err:
        problems.append(Problem(entry, f"{file}: not UTF-8 text ({err.reason})"))
        return []
    except OSError as err:
        problems.append(Problem(entry, f"{file}: cannot read: {err.strerror}"))
        return []
    found = []
    for binding in parse_stream(io.StringIO(text)):
        original = binding.original.string
        # A binding's text starts with the blank lines before it: count from its own line.
        line = binding.original.line + original[: len(original) - len(original.lstrip())].count(
            "\n"
        )
        if binding.error:
            shown = binding.original.string.strip()[:60]
            problems.append(
                Problem(
                    entry,
                    f"{file}:{line}: cannot read {shown!r}",
                    hint="write KEY=VALUE, quote a value with spaces, # starts a comment",
                )
            )
        elif binding.key is None:
            continue  # a comment or a blank line
        elif not is_env_name(binding.key):
            problems.append(
                Problem(entry, f"{file}:{line}: {binding.key!r} is not a valid variable name")
            )
        elif binding.value is None:
            problems.append(
                Problem(
                    entry,
                    f"{file}:{line}: {binding.key} has no value",
                    hint=f"write {binding.key}=VALUE; a value from fargo up's environment is "
                    "a secret's local: {env: VARIABLE}",
                )
            )
        else:
            found.append((binding.key, binding.value, line))
    return found
