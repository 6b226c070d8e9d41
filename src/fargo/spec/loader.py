"""Reading ``fargo.yaml``: YAML with positions, model validation, cross-checks, all errors at once.

>>> spec = load_spec("fargo.yaml")          # doctest: +SKIP
>>> spec.services["backend-public"].port    # doctest: +SKIP
8080
>>> report = check_spec("fargo.yaml", world="cloud")  # doctest: +SKIP
>>> report.warning_lines()                  # doctest: +SKIP
[]

Every problem is located (file, line, column, field) from the YAML's positions: the
spec's own errors, what only the cloud refuses, and warnings alike.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from fargo.spec import (
    advice,
    container_health,
    deployable,
    domains,
    env_files,
    fields,
    local_values,
    lookalikes,
    salvage,
    yaml_errors,
)
from fargo.spec.checks import check
from fargo.spec.errors import Loc, Problem, SpecFileError, SpecInvalid
from fargo.spec.model import Spec

World = Literal["cloud", "twin"]

# Added to the hint of a problem only the cloud has, when the twin runs the spec anyway.
TWIN_RUNS_IT = "fargo validate, synth and deploy refuse this; the twin runs it"
# Added to the hint of a problem only the twin has, when the cloud deploys the spec anyway.
CLOUD_TAKES_IT = "fargo up refuses this; validate, synth and deploy take it"


@dataclass(frozen=True)
class SpecReport:
    """A spec that loaded for a world, and the warnings about it (located, in file order)."""

    path: Path
    spec: Spec
    warnings: tuple[Problem, ...] = ()

    def warning_lines(self) -> list[str]:
        """``file:line:column: warning: field: message (hint)``, one per warning."""
        return [warning.render(self.path, label="warning") for warning in self.warnings]


def load_spec(path: Path | str) -> Spec:
    """Read, validate and cross-check a spec file; raise `SpecFileError` or `SpecInvalid`.

    Raises for what every world refuses (a local secret file git would commit among it);
    `check_spec` tells one world's own problems and the warnings too.
    """
    path = Path(path)
    return _check(_read(path), path, world=None, spec_dir=path.parent).spec


def parse_spec(text: str, path: Path | str = "fargo.yaml") -> Spec:
    """Validate spec text; ``path`` is only used in messages (see `load_spec`)."""
    return _check(text, Path(path), world=None, spec_dir=None).spec


def check_spec(path: Path | str, *, world: World) -> SpecReport:
    """Load a spec file for ``world``; raise `SpecFileError`, or `SpecInvalid` with every error.

    ``world="cloud"`` (`fargo validate`, `synth`, `deploy`): what the cloud refuses
    (`fargo.spec.deployable`) is an error too. ``world="twin"`` (`fargo up`): it is a
    warning, since the twin can run it (and show how it fails); a secret without a local
    value (`fargo.spec.local_values`) is the twin's error and the cloud's warning. A local
    secret file that git would commit is an error in both. Warnings (`fargo.spec.advice`)
    never raise.
    """
    return _check(_read(Path(path)), Path(path), world=world, spec_dir=Path(path).parent)


def check_spec_text(text: str, path: Path | str = "fargo.yaml", *, world: World) -> SpecReport:
    """`check_spec` on spec text; ``path`` is only used in messages (so no file of the
    spec's folder is looked at: local secret files are not checked against git)."""
    return _check(text, Path(path), world=world, spec_dir=None)


def _check(text: str, path: Path, *, world: World | None, spec_dir: Path | None) -> SpecReport:
    """The spec in ``text``; ``world`` None: what every world refuses is an error, what one
    world refuses a warning."""
    document = _parse_yaml(text, path)
    errors: list[Problem] = []
    salvaged: salvage.Salvaged | None = None
    try:
        spec = Spec.model_validate(document)
    except ValidationError as err:
        errors += _problems(err, document)
        # Check the rest too, so every mistake shows in one run, not one per fix.
        salvaged = salvage.salvage(document)
        if salvaged is None:
            raise SpecInvalid(path, sorted(errors, key=lambda p: p.line or 0)) from None
        spec = salvaged.spec
    origins: env_files.Origins = {}

    def located(problems: list[Problem]) -> list[Problem]:
        if salvaged is not None:
            problems = [salvaged.original(p) for p in problems if salvaged.keeps(p)]
        return [_locate(env_files.relocate(p, origins), document) for p in problems]

    if spec_dir is not None:  # env files are read where the spec is (not for spec text)
        spec, file_problems, origins = env_files.read_env_files(spec, spec_dir)
        errors += located(file_problems)

    errors += located(check(spec))
    if spec_dir is not None:  # a secret git would commit is refused in every world
        errors += located(local_values.unignored_files(spec, spec_dir))
    cloud = located(deployable.check(spec))
    twin = located(local_values.missing_local(spec))
    warnings = located(advice.check(spec))
    if spec_dir is not None:  # the images' Dockerfiles are where the spec is
        warnings += located(container_health.probe_warnings(spec, spec_dir))
    if world == "cloud":
        errors += cloud
    else:
        warnings += [replace(p, hint=_join(p.hint, TWIN_RUNS_IT)) for p in cloud]
    if world == "twin":
        errors += twin
        warnings += located(list(domains.local_ca_reach(spec)))
    else:
        warnings += [replace(p, hint=_join(p.hint, CLOUD_TAKES_IT)) for p in twin]
    if errors or salvaged is not None:
        raise SpecInvalid(path, sorted(errors, key=lambda p: p.line or 0))
    return SpecReport(path, spec, tuple(sorted(warnings, key=lambda p: p.line or 0)))


def _read(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SpecFileError(path, "no such file; create it or pass -f PATH") from None
    except IsADirectoryError:
        raise SpecFileError(path, "is a directory, expected a YAML file") from None
    except PermissionError:
        raise SpecFileError(path, "permission denied; make the file readable") from None
    except OSError as err:
        raise SpecFileError(path, f"cannot read: {err.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        # Where a person looks: the line and the character's column, not a byte offset.
        line_start = data.rfind(b"\n", 0, err.start) + 1
        line = data.count(b"\n", 0, err.start) + 1
        column = len(data[line_start : err.start].decode("utf-8", errors="replace")) + 1
        byte = data[err.start : err.start + 1].hex()
        raise SpecFileError(
            path,
            f"not UTF-8 text: byte 0x{byte} here ({err.reason}); save the file as UTF-8",
            line,
            column,
        ) from None


def _join(hint: str | None, more: str) -> str:
    return f"{hint}; {more}" if hint else more


def _parse_yaml(text: str, path: Path) -> CommentedMap:
    yaml = YAML(typ="rt")
    try:
        document = yaml.load(text)
    except MarkedYAMLError as err:
        reason, line, column = yaml_errors.explain(err, text)
        raise SpecFileError(path, reason, line, column) from None
    except RecursionError:
        # ruamel's composer recurses once per level: hundreds of brackets exhaust the stack.
        where = yaml_errors.nesting_too_deep(text)
        raise SpecFileError(
            path,
            f"brackets or indentation nest more than {yaml_errors.MAX_NESTING} levels "
            "deep here; a fargo spec needs fewer than ten",
            *(where or (None, None)),
        ) from None
    except YAMLError as err:
        raise SpecFileError(path, f"not valid YAML: {err}") from None
    if document is None:
        raise SpecFileError(
            path, "the file is empty; start from the fargo.yaml in the project root"
        )
    if not isinstance(document, CommentedMap):
        kind = _shape(document)
        raise SpecFileError(path, f"the top level must be a mapping of keys, found {kind}", 1, 1)
    return document


def _problems(err: ValidationError, document: CommentedMap) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[Loc, str]] = set()
    for error in _prefer_matching_branch(err.errors(), document):
        loc = salvage.data_loc(error["loc"], document)
        message, hint = _describe(error, loc)
        if (loc, message) in seen:
            continue
        seen.add((loc, message))
        problems.append(_locate(Problem(loc, message, hint=hint), document))
    return problems


def _describe(error: Mapping[str, Any], loc: Loc) -> tuple[str, str | None]:
    kind = error["type"]
    if kind == "missing":
        return f"missing required field {loc[-1]!r}", None
    if kind == "extra_forbidden":
        known = fields.names_at(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = (
            f"did you mean {close[0]!r}?"
            if close
            else (f"expected one of: {', '.join(known)}" if known else None)
        )
        return f"unknown field {loc[-1]!r}", hint
    message = str(error["msg"]).removeprefix("Value error, ")
    found = error.get("input")
    odd = lookalikes.describe(found) if isinstance(found, str) else None
    if odd is not None:
        # A look-alike letter makes a name look right and match nothing: say which.
        return odd, "type it in plain ASCII"
    if kind in {"value_error", "assertion_error"}:
        return message, None
    if isinstance(found, Mapping | list):
        # A wrong shape (a list where a mapping belongs): name the shape, not its contents.
        return (f"{message}; found {_shape(found)}" if kind.endswith("_type") else message), None
    return f"{message}; found {found!r}", None


def _shape(value: object) -> str:
    """What a YAML value is, in the words of the file (not ruamel's class names)."""
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__


def _prefer_matching_branch(
    errors: Sequence[Any], document: CommentedMap
) -> list[Mapping[str, Any]]:
    """Of a union's branches, keep the errors of the branch that fits the input's shape."""
    kept = []
    for error in errors:
        loc = error["loc"]
        node: Any = document
        drop = False
        for part in loc:
            if _has(node, part):
                node = node[part]
            elif isinstance(part, str) and part[:1].isupper():
                drop = not isinstance(node, Mapping)  # a model branch, but a scalar was given
            elif isinstance(part, str) and part in {"str", "int", "bool"}:
                drop = isinstance(node, Mapping | list)  # a scalar branch, but a mapping was given
        if not drop:
            kept.append(error)
    return kept or list(errors)


def _has(node: Any, part: str | int) -> bool:
    if isinstance(node, Mapping):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and part < len(node)


def _locate(problem: Problem, document: CommentedMap) -> Problem:
    """Add the line and column of the deepest part of ``problem.loc`` found in the file."""
    node: Any = document
    line, column = 0, 0
    for part in problem.loc:
        if isinstance(node, CommentedMap) and part in node:
            line, column = node.lc.key(part)
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line, column = node.lc.item(part)
            node = node[part]
        else:
            break
    return replace(problem, line=line + 1, column=column + 1)
