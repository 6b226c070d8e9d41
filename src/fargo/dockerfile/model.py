"""A parsed Dockerfile: stages, their instructions, and the variables each one sees.

Scopes follow Docker's rules: an ``ARG`` before the first ``FROM`` is a global build
argument, usable in ``FROM`` lines and, inside a stage, only after ``ARG NAME`` declares it
there again; ``ARG`` and ``ENV`` take effect from the next instruction on; ``ENV`` wins over
an ``ARG`` of the same name; a stage built ``FROM`` another inherits its ``ENV``. A
variable the Dockerfile does not set may come from the base image's ``ENV``: its value
is unknown (`UnresolvedVariable`) unless the stage is built ``FROM scratch``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fargo.dockerfile.errors import DockerfileError, UnresolvedVariable
from fargo.dockerfile.syntax import Flag, Form, Heredoc, RawInstruction, read
from fargo.dockerfile.variables import ExpansionError, UnsupportedExpansion, expand

STAGE_NAME = re.compile(r"^[a-z][a-z0-9._-]*$")
SCRATCH = "scratch"
# Build arguments Docker defines itself (in the global scope, like an ARG before FROM).
TARGET_ARGS = ("TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT")
BUILD_ARGS = ("BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT")


class _Unknown:
    """The value of a variable that only the build knows."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()
Value = str | _Unknown


@dataclass(frozen=True)
class Scope:
    """The variables an instruction sees; ``complete``: a name not in ``values`` is unset
    (no base image ``ENV`` could set it)."""

    values: Mapping[str, Value]
    complete: bool

    def lookup(self, name: str, *, path: Path | str | None, line: int) -> str | None:
        value = self.values.get(name)
        if isinstance(value, str):
            return value
        if value is None and self.complete:
            return None
        raise UnresolvedVariable(name, path=path, line=line)


@dataclass(frozen=True)
class Mount:
    """A ``RUN --mount=…``: ``type`` (bind when not given), ``source`` in ``from_`` (the
    build context when None), ``target``."""

    type: str
    source: str | None
    target: str | None
    from_: str | None


@dataclass(frozen=True)
class Instruction:
    """One instruction: ``keyword`` (upper case), ``flags``, ``arguments`` as written (a
    JSON array's items in the exec form; one string for a shell-form ``RUN``/``CMD``/
    ``ENTRYPOINT``; words otherwise), ``form``, and its 1-based ``line``."""

    keyword: str
    arguments: tuple[str, ...]
    flags: tuple[Flag, ...]
    form: Form
    line: int
    end_line: int
    original: str
    heredocs: tuple[Heredoc, ...] = ()
    path: Path | str | None = field(default=None, repr=False, compare=False)
    escape: str = field(default="\\", repr=False, compare=False)
    scope: Scope = field(default=Scope({}, complete=False), repr=False, compare=False)

    def has_flag(self, name: str) -> bool:
        return any(flag.name == name for flag in self.flags)

    def flag(self, name: str) -> str | None:
        """The value of ``--name`` (``""`` for a bare ``--link``), None when absent."""
        values = self.flag_values(name)
        return values[-1] if values else None

    def flag_values(self, name: str) -> list[str]:
        """Every value of a repeatable flag (``--mount``, ``--exclude``)."""
        return [flag.value or "" for flag in self.flags if flag.name == name]

    def expand(self, word: str) -> str:
        """``word`` with the variables this instruction sees substituted, quotes and escapes
        resolved, as Docker does for ``COPY``, ``ADD``, ``ENV``, ``WORKDIR``, ``USER``, …
        (not for ``RUN``, ``CMD``, ``ENTRYPOINT``: the shell or the program does that).
        Raises `UnresolvedVariable` when a value is only known to the build."""

        def lookup(name: str) -> str | None:
            return self.scope.lookup(name, path=self.path, line=self.line)

        try:
            return expand(word, lookup, escape=self.escape)
        except UnsupportedExpansion as err:
            raise UnresolvedVariable(str(err), path=self.path, line=self.line) from None
        except ExpansionError as err:
            raise self.error(f"{self.keyword}: {err}") from None

    def pairs(self) -> list[tuple[str, str | None]]:
        """``ARG``, ``ENV``, ``LABEL``: (name, value as written; None for ``ARG NAME``)."""
        if self.keyword in {"ENV", "LABEL"} and self.arguments and "=" not in self.arguments[0]:
            return [(self.arguments[0], self.arguments[1])]  # the old ``ENV NAME value``
        result: list[tuple[str, str | None]] = []
        for word in self.arguments:
            name, equals, value = word.partition("=")
            result.append((name, value if equals else None))
        return result

    def mounts(self) -> list[Mount]:
        """The ``--mount`` flags of a ``RUN``, their values substituted."""
        mounts = []
        for spec in self.flag_values("mount"):
            fields: dict[str, str] = {}
            for item in next(csv.reader([spec])):
                key, _, value = item.partition("=")
                fields[key.strip().lower()] = value
            source = fields.get("source", fields.get("src"))
            target = fields.get("target", fields.get("dst", fields.get("destination")))
            mounts.append(
                Mount(
                    type=self.expand(fields.get("type", "bind")).lower(),
                    source=self.expand(source) if source is not None else None,
                    target=self.expand(target) if target is not None else None,
                    from_=self.expand(fields["from"]) if "from" in fields else None,
                )
            )
        return mounts

    def error(self, message: str) -> DockerfileError:
        return DockerfileError(message, path=self.path, line=self.line)


@dataclass(frozen=True)
class Stage:
    """``FROM base [AS name]`` and what follows up to the next ``FROM``. ``instructions[0]``
    is the ``FROM``; ``base_stage``: the index of the stage it builds on, if any."""

    index: int
    name: str | None
    base: str
    base_stage: int | None
    platform: str | None
    instructions: tuple[Instruction, ...]
    environment: Mapping[str, Value] = field(repr=False)  # its ENV at the end
    # False when the base image's ENV is unknown (any image but scratch)
    environment_complete: bool = field(default=False, repr=False)

    @property
    def line(self) -> int:
        return self.instructions[0].line


@dataclass(frozen=True)
class Dockerfile:
    """A parsed Dockerfile: ``directives`` (``syntax``, ``escape``), the ``ARG``\\s before
    the first ``FROM`` (``global_args``), and the ``stages``; the last is what a build
    without ``--target`` produces."""

    path: Path | str | None
    directives: Mapping[str, str]
    global_args: tuple[Instruction, ...]
    stages: tuple[Stage, ...]

    @property
    def target(self) -> Stage:
        return self.stages[-1]

    def stage(self, reference: str) -> Stage | None:
        """The stage named ``reference`` (case-insensitive) or numbered so (``--from=0``)."""
        if reference.isdigit():
            index = int(reference)
            return self.stages[index] if index < len(self.stages) else None
        wanted = reference.lower()
        return next((s for s in self.stages if s.name == wanted), None)

    def dependencies(self, stage: Stage) -> list[Stage]:
        """The stages ``stage`` needs: its base, ``COPY --from`` and ``RUN --mount from=``
        sources (an image name that is no stage is none)."""
        needed: list[Stage] = []
        if stage.base_stage is not None:
            needed.append(self.stages[stage.base_stage])
        for instruction in stage.instructions:
            references: list[str] = []
            if instruction.keyword == "COPY" and instruction.flag("from") is not None:
                references.append(instruction.expand(instruction.flag("from") or ""))
            if instruction.keyword == "RUN":
                references += [m.from_ for m in instruction.mounts() if m.from_ is not None]
            for reference in references:
                found = self.stage(reference)
                if found is not None and found.index < stage.index and found not in needed:
                    needed.append(found)
        return needed

    def reachable(self, target: Stage | None = None) -> list[Stage]:
        """``target`` (default: the last stage) and every stage it needs, by index: what
        BuildKit builds."""
        seen: dict[int, Stage] = {}
        pending = [target or self.target]
        while pending:
            stage = pending.pop()
            if stage.index not in seen:
                seen[stage.index] = stage
                pending.extend(self.dependencies(stage))
        return [seen[index] for index in sorted(seen)]


def parse_file(
    path: Path,
    *,
    build_args: Mapping[str, str] | None = None,
    platform: str | None = None,
) -> Dockerfile:
    """Parse the Dockerfile at ``path`` (errors name it)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DockerfileError(f"cannot read it: {err}", path=path, line=None) from None
    return parse(text, path=path, build_args=build_args, platform=platform)


def parse(
    text: str,
    *,
    path: Path | str | None = None,
    build_args: Mapping[str, str] | None = None,
    platform: str | None = None,
) -> Dockerfile:
    """Parse a Dockerfile's text. ``build_args``: ``--build-arg`` values; ``platform``: the
    target platform (``linux/arm64``) that sets ``TARGETPLATFORM``, ``TARGETARCH``, …"""
    directives, raw = read(text, path=path)
    escape = directives.get("escape", "\\")
    build_args = dict(build_args or {})
    global_values: dict[str, Value] = {**_platform_args(platform), **build_args}
    defined: dict[str, Value] = dict.fromkeys(BUILD_ARGS, UNKNOWN)
    defined.update(global_values)

    def bind(item: RawInstruction, scope: Scope) -> Instruction:
        return Instruction(
            keyword=item.keyword,
            arguments=item.arguments,
            flags=item.flags,
            form=item.form,
            line=item.line,
            end_line=item.end_line,
            original=item.original,
            heredocs=item.heredocs,
            path=path,
            escape=escape,
            scope=scope,
        )

    global_args: list[Instruction] = []
    position = 0
    while position < len(raw) and raw[position].keyword != "FROM":
        instruction = bind(raw[position], Scope(dict(defined), complete=True))
        if instruction.keyword != "ARG":
            raise instruction.error(
                f"{instruction.keyword} before the first FROM: only ARG may come first "
                "(start the stage with FROM <image>)"
            )
        for name, value in _arg_values(instruction, build_args, defined):
            defined[name] = value
        global_args.append(instruction)
        position += 1
    if position == len(raw):
        raise DockerfileError("no FROM instruction: add FROM <image>", path=path, line=None)

    stages: list[Stage] = []
    while position < len(raw):
        end = position + 1
        while end < len(raw) and raw[end].keyword != "FROM":
            end += 1
        stages.append(_stage(len(stages), raw[position:end], stages, defined, build_args, bind))
        position = end
    return Dockerfile(path, directives, tuple(global_args), tuple(stages))


def _platform_args(platform: str | None) -> dict[str, Value]:
    if platform is None:
        return dict.fromkeys(TARGET_ARGS, UNKNOWN)
    os_name, _, rest = platform.partition("/")
    architecture, _, variant = rest.partition("/")
    return dict(zip(TARGET_ARGS, (platform, os_name, architecture, variant), strict=True))


def _value(instruction: Instruction, word: str) -> Value:
    try:
        return instruction.expand(word)
    except UnresolvedVariable:
        return UNKNOWN


def _arg_values(
    instruction: Instruction, build_args: Mapping[str, str], defined: Mapping[str, Value]
) -> list[tuple[str, Value]]:
    """``ARG NAME[=default]``: the build argument given, else the default, else the global
    ``ARG``'s value, else empty."""
    if not instruction.arguments:
        raise instruction.error("ARG needs a name: ARG NAME[=default]")
    values: list[tuple[str, Value]] = []
    for name, default in instruction.pairs():
        if name in build_args:
            values.append((name, build_args[name]))
        elif default is not None:
            values.append((name, _value(instruction, default)))
        else:
            values.append((name, defined.get(name, "")))
    return values


def _stage(
    index: int,
    raw: list[RawInstruction],
    earlier: list[Stage],
    defined: Mapping[str, Value],
    build_args: Mapping[str, str],
    bind: Callable[[RawInstruction, Scope], Instruction],
) -> Stage:
    head = bind(raw[0], Scope(dict(defined), complete=True))
    arguments = head.arguments
    if len(arguments) not in (1, 3) or (len(arguments) == 3 and arguments[1].upper() != "AS"):
        raise head.error("FROM takes an image and an optional name: FROM <image> [AS <name>]")
    base = head.expand(arguments[0])
    if not base:
        raise head.error(f"FROM {arguments[0]}: the image name is empty")
    name = arguments[2].lower() if len(arguments) == 3 else None
    if name is not None and not STAGE_NAME.match(name):
        raise head.error(f"invalid stage name {arguments[2]!r}: use letters, digits, . _ -")
    if name is not None and any(stage.name == name for stage in earlier):
        raise head.error(f"duplicate stage name {name!r}")
    parent = next((s for s in earlier if s.name == base.lower()), None)
    platform = head.flag("platform")
    environment: dict[str, Value] = dict(parent.environment) if parent else {}
    complete = parent.environment_complete if parent else base == SCRATCH
    arguments_in_scope: dict[str, Value] = {}
    instructions = [head]
    for item in raw[1:]:
        scope = Scope({**arguments_in_scope, **environment}, complete=complete)
        instruction = bind(item, scope)
        if instruction.keyword == "ARG":
            arguments_in_scope.update(_arg_values(instruction, build_args, defined))
        elif instruction.keyword == "ENV":
            if not instruction.arguments:
                raise instruction.error("ENV needs a value: ENV NAME=value")
            assigned: list[tuple[str, Value]] = []
            for key, value in instruction.pairs():
                if value is None:
                    raise instruction.error(f"ENV {key}: no value (ENV {key}=value)")
                assigned.append((key, _value(instruction, value)))
            environment.update(assigned)  # one ENV's values all see the scope before it
        instructions.append(instruction)
    platform_value = _value(head, platform) if platform else None
    return Stage(
        index=index,
        name=name,
        base=base,
        base_stage=parent.index if parent else None,
        platform=platform_value if isinstance(platform_value, str) else None,
        instructions=tuple(instructions),
        environment=environment,
        environment_complete=complete,
    )
