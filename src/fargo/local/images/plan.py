"""A parsed Dockerfile → what the twin does to build its image (no files touched).

    plan = plan_build(parse_file(Path("services/web/Dockerfile")))
    plan.python          # "3.12" (FROM python:3.12-slim), None: any Python 3
    plan.stages[-1].operations   # COPY/ADD, mkdir, in the order of the Dockerfile
    plan.installs        # every RUN pip install of the stages the image needs
    plan.run             # WORKDIR, ENV, USER, EXPOSE, ENTRYPOINT + CMD of the last stage
    plan.notes           # "<file>:<line>: RUN apt-get install -y curl: not run: …"

Docker's rules kept: the last stage is the image and only the stages it needs are built;
a stage ``FROM`` another inherits its files, ``WORKDIR``, ``ENV``, ``USER``, ``CMD`` and
``ENTRYPOINT``; ``ENV`` and ``ARG`` apply from the next instruction; a relative
``WORKDIR``/``COPY`` destination is relative to the current ``WORKDIR``; a shell-form
``CMD``/``ENTRYPOINT`` runs under ``/bin/sh -c``, and a shell-form ``ENTRYPOINT`` ignores
``CMD``; an ``ENTRYPOINT`` drops a ``CMD`` inherited from the base.

The twin's rules: one Python environment per image, so an install in any stage the image
needs goes into it (a builder stage's ``/opt/venv`` copied into the last stage is that
environment; its path stays a name for it, see `RunConfig.venv_paths`).
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from fargo.dockerfile import Dockerfile, DockerfileError, Instruction, Stage
from fargo.dockerfile.bases import python_version, root_base
from fargo.dockerfile.variables import ExpansionError, expand
from fargo.local.images.run import (
    ChangeDirectory,
    CompileAll,
    InstallArgument,
    Mkdir,
    NoOp,
    PipInstall,
    Unsupported,
    Venv,
    classify,
    simple_commands,
)
from fargo.local.images.user import user_note

# Docker's PATH for Linux images (and the python images'): what $PATH is in a stage whose
# base image the twin does not have. The launcher puts this machine's PATH after it.
DOCKER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# HEALTHCHECK flags → the spec's health_check fields, with the bounds ECS takes.
HEALTHCHECK_TIMINGS = (
    ("interval", "interval", (5, 300)),
    ("timeout", "timeout", (2, 60)),
    ("start-period", "start_period", (0, 300)),
    ("retries", "retries", (1, 10)),
)
DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
IGNORED_QUIETLY = frozenset({"LABEL", "MAINTAINER"})  # metadata no task notices
# What the twin does instead of the rest (reported with the line).
INSTEAD = {
    "SHELL": "shell-form commands run with /bin/sh -c",
    "STOPSIGNAL": "a task is stopped with SIGTERM, then SIGKILL after its stop timeout",
    "VOLUME": "no volume is made: the folder is the image's own",
    "ONBUILD": "recorded for images built FROM this one by Docker; the twin ignores it",
}


@dataclass(frozen=True)
class Note:
    """Something the twin does not do as Docker would, where, and what it does instead."""

    path: str
    line: int
    instruction: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.instruction}: {self.message}"


@dataclass(frozen=True)
class CopyFiles:
    """``COPY``/``ADD`` into the stage: ``sources`` in the build context (or absolute in
    stage ``from_stage``), to ``destination`` (absolute in the image)."""

    sources: tuple[str, ...]
    destination: str
    from_stage: int | None
    extract: bool  # ADD: a local tar archive is unpacked
    line: int


@dataclass(frozen=True)
class MakeDirectories:
    paths: tuple[str, ...]  # absolute in the image
    line: int


@dataclass(frozen=True)
class CompileBytecode:
    """``RUN python -m compileall``: the bytecode of the files under ``paths`` (absolute in
    the image), made by the image's interpreter with compileall's ``options``."""

    paths: tuple[str, ...]
    options: tuple[str, ...]
    line: int


Operation = CopyFiles | MakeDirectories | CompileBytecode


@dataclass(frozen=True)
class Install:
    """A ``RUN … pip install``: its arguments, files and paths absolute in the image."""

    arguments: tuple[InstallArgument, ...]
    directory: str  # absolute in the image: where a relative path in a requirements file points
    stage: int
    line: int
    text: str


@dataclass(frozen=True)
class HealthCheck:
    command: tuple[str, ...]  # exec form, or ("/bin/sh", "-c", text); () for NONE
    line: int


@dataclass(frozen=True)
class RunConfig:
    """How the image runs: as an OCI image config says, plus the twin's ``venv_paths``
    (the folders the Dockerfile made a venv in: ``/opt/venv`` stands for the image's
    environment wherever it appears, in ``PATH`` or in a command)."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    cmd_inherited: bool = False
    working_dir: str = "/"
    env: Mapping[str, str] = field(default_factory=dict)
    user: str = ""
    exposed_ports: tuple[str, ...] = ()
    healthcheck: HealthCheck | None = None
    venv_paths: tuple[str, ...] = ()

    @property
    def argv(self) -> tuple[str, ...]:
        return (*self.entrypoint, *self.cmd)


@dataclass(frozen=True)
class StagePlan:
    index: int
    name: str | None
    base: str
    operations: tuple[Operation, ...]
    run: RunConfig
    line: int = 0  # of its FROM


@dataclass(frozen=True)
class BuildPlan:
    python: str | None  # "3.12"; None: any Python 3 (FROM python, or no Python image)
    python_image: bool  # whether some stage builds FROM a python image
    stages: tuple[StagePlan, ...]  # the stages the image needs, by index; the last is it
    installs: tuple[Install, ...]
    notes: tuple[Note, ...]

    @property
    def run(self) -> RunConfig:
        return self.stages[-1].run

    def stage(self, index: int) -> StagePlan:
        return next(s for s in self.stages if s.index == index)


def plan_build(dockerfile: Dockerfile) -> BuildPlan:
    """What building ``dockerfile``'s last stage takes. Raises `DockerfileError` for what
    Docker would refuse too (a COPY without a destination, …)."""
    planner = _Planner(dockerfile)
    stages = [planner.stage(stage) for stage in dockerfile.reachable()]
    python = None
    for stage in dockerfile.reachable()[::-1]:  # the last stage's FROM first
        found, version = python_version(root_base(dockerfile, stage))
        if found and version:
            python = version
            break
    return BuildPlan(
        python=python,
        python_image=planner.python_image,
        stages=tuple(stages),
        installs=tuple(planner.installs),
        notes=tuple(planner.notes),
    )


class _Planner:
    def __init__(self, dockerfile: Dockerfile) -> None:
        self.dockerfile = dockerfile
        self.path = str(dockerfile.path or "Dockerfile")
        self.plans: dict[int, StagePlan] = {}
        self.installs: list[Install] = []
        self.notes: list[Note] = []
        self.python_image = False
        self.global_args: dict[str, str] = {}
        for instruction in dockerfile.global_args:
            for name, default in instruction.pairs():
                value = self._expand(instruction, default, self.global_args) if default else ""
                self.global_args[name] = value

    def note(self, instruction: Instruction, message: str, subject: str | None = None) -> None:
        what = subject or instruction.keyword
        self.notes.append(Note(self.path, instruction.line, what, message))

    def _expand(self, instruction: Instruction, word: str, variables: Mapping[str, str]) -> str:
        """``word`` with this stage's variables; a base image's own ENV (other than PATH)
        is unknown here and reads as empty, with a note."""

        def lookup(name: str) -> str | None:
            if name in variables:
                return variables[name]
            if name == "PATH":
                return DOCKER_PATH
            return None

        try:
            return expand(word, lookup, escape=instruction.escape)
        except ExpansionError as err:
            raise instruction.error(f"{instruction.keyword}: {err}") from None

    def stage(self, stage: Stage) -> StagePlan:
        head = stage.instructions[0]
        if stage.base_stage is not None:
            parent = self.plans[stage.base_stage]
            run = replace(parent.run, cmd_inherited=True)
            operations: list[Operation] = list(parent.operations)
        else:
            run = RunConfig(env={"PATH": DOCKER_PATH})
            operations = []
            is_python, _ = python_version(stage.base)
            self.python_image |= is_python
            if is_python:
                run = replace(run, env={**run.env, "LANG": "C.UTF-8"})
            elif stage.base != "scratch":
                self.note(
                    head,
                    f"base image {stage.base}: its programs and packages are not in the twin; "
                    "the image's commands run with this machine's programs",
                    "FROM",
                )
        arguments: dict[str, str] = {}
        for instruction in stage.instructions[1:]:
            variables = {**arguments, **run.env}
            keyword = instruction.keyword
            if keyword == "ARG":
                for name, default in instruction.pairs():
                    if default is not None:
                        arguments[name] = self._expand(instruction, default, variables)
                    else:
                        arguments[name] = self.global_args.get(name, "")
            elif keyword == "ENV":
                values = {
                    name: self._expand(instruction, value or "", variables)
                    for name, value in instruction.pairs()
                }
                run = replace(run, env={**run.env, **values})
            elif keyword == "WORKDIR":
                directory = self._expand(instruction, " ".join(instruction.arguments), variables)
                run = replace(run, working_dir=_absolute(directory, run.working_dir))
                operations.append(MakeDirectories((run.working_dir,), instruction.line))
            elif keyword in {"COPY", "ADD"}:
                copy = self._copy(instruction, variables, run.working_dir)
                if copy is not None:
                    copy, venvs = self._venv_copies(copy)
                    run = replace(run, venv_paths=tuple(dict.fromkeys((*run.venv_paths, *venvs))))
                    if copy.sources:
                        operations.append(copy)
            elif keyword == "RUN":
                run, made = self._run(stage, instruction, run)
                operations += made
            elif keyword == "USER":
                user = self._expand(instruction, instruction.arguments[0], variables)
                run = replace(run, user=user)
                self.note(instruction, user_note(user))
            elif keyword == "EXPOSE":
                ports = [self._expand(instruction, p, variables) for p in instruction.arguments]
                run = replace(run, exposed_ports=(*run.exposed_ports, *ports))
            elif keyword in {"CMD", "ENTRYPOINT"}:
                command = _command(instruction)
                if keyword == "CMD":
                    run = replace(run, cmd=command, cmd_inherited=False)
                else:
                    keep = () if instruction.form == "shell" or run.cmd_inherited else run.cmd
                    run = replace(run, entrypoint=command, cmd=keep)
            elif keyword == "HEALTHCHECK":
                run = replace(run, healthcheck=_healthcheck(instruction))
                # As on ECS: its agent runs the task definition's health check only, never
                # an image's HEALTHCHECK (API reference, HealthCheck).
                self.note(
                    instruction,
                    "not run, as ECS does not run an image's HEALTHCHECK either: the service's "
                    "container health check from the spec runs (health_check: an HTTP GET of "
                    "its path, / by default)" + _as_spec_command(instruction),
                )
            elif keyword in IGNORED_QUIETLY:
                continue  # metadata: nothing a running task would notice
            elif keyword in INSTEAD:
                self.note(instruction, f"not honoured: {INSTEAD[keyword]}")
            else:
                self.note(instruction, "not supported by the twin; ignored")
        plan = StagePlan(stage.index, stage.name, stage.base, tuple(operations), run, stage.line)
        self.plans[stage.index] = plan
        return plan

    def _copy(
        self, instruction: Instruction, variables: Mapping[str, str], workdir: str
    ) -> CopyFiles | None:
        words = [self._expand(instruction, word, variables) for word in instruction.arguments]
        if len(words) < 2:
            raise instruction.error(f"{instruction.keyword} needs a source and a destination")
        if instruction.heredocs:
            self.note(instruction, "heredoc sources are not copied")
            return None
        if instruction.flag("chown") is not None:
            self.note(instruction, "--chown: files belong to the user running fargo")
        if instruction.flag("chmod") is not None:
            self.note(instruction, "--chmod: files keep their mode from the build context")
        *sources, destination = words
        reference = instruction.flag("from")
        from_stage: int | None = None
        if reference is not None:
            found = self.dockerfile.stage(self._expand(instruction, reference, variables))
            if found is None or found.index not in self.plans:
                self.note(
                    instruction,
                    f"--from={reference}: files of another image are not available; not copied",
                )
                return None
            from_stage = found.index
        remote = [s for s in sources if "://" in s or s.startswith("git@")]
        if remote:
            self.note(instruction, f"{', '.join(remote)}: remote sources are not fetched")
            sources = [s for s in sources if s not in remote]
            if not sources:
                return None
        absolute_dest = _absolute(destination, workdir)
        if destination.endswith("/") and not absolute_dest.endswith("/"):
            absolute_dest += "/"
        if len(sources) > 1 or any(c in s for s in sources for c in "*?["):
            absolute_dest = absolute_dest.rstrip("/") + "/"
        return CopyFiles(
            tuple(sources),
            absolute_dest,
            from_stage,
            extract=instruction.keyword == "ADD" and from_stage is None,
            line=instruction.line,
        )

    def _venv_copies(self, copy: CopyFiles) -> tuple[CopyFiles, list[str]]:
        """``COPY --from=builder /opt/venv /opt/venv``: the image's one environment is that
        venv already; its destination becomes another name for it, nothing is copied."""
        if copy.from_stage is None:
            return copy, []
        venvs = self.plans[copy.from_stage].run.venv_paths
        moved = [s for s in copy.sources if posixpath.normpath(s) in venvs]
        if not moved:
            return copy, []
        kept = tuple(s for s in copy.sources if s not in moved)
        if copy.destination.endswith("/") and (len(copy.sources) > 1 or kept):
            names = [copy.destination + posixpath.basename(s.rstrip("/")) for s in moved]
        else:
            names = [copy.destination.rstrip("/") or "/"]
        return replace(copy, sources=kept), names

    def _run(
        self, stage: Stage, instruction: Instruction, run: RunConfig
    ) -> tuple[RunConfig, list[Operation]]:
        if instruction.heredocs:
            self.note(instruction, "heredoc scripts are not run")
            return run, []
        if instruction.form == "exec":
            commands = [list(instruction.arguments)]
        else:
            commands = simple_commands(instruction.arguments[0] if instruction.arguments else "")
        directory = run.working_dir
        operations: list[Operation] = []
        unsupported: dict[str, list[str]] = {}  # reason → commands: one note per reason
        for words in commands:
            command = classify(words)
            if isinstance(command, ChangeDirectory):
                directory = _absolute(command.path, directory)
            elif isinstance(command, Mkdir):
                paths = tuple(_absolute(p, directory) for p in command.paths)
                operations.append(MakeDirectories(paths, instruction.line))
            elif isinstance(command, CompileAll):
                paths = tuple(_absolute(p, directory) for p in command.paths)
                operations.append(CompileBytecode(paths, command.options, instruction.line))
            elif isinstance(command, Venv):
                path = _absolute(command.path, directory)
                run = replace(run, venv_paths=tuple(dict.fromkeys((*run.venv_paths, path))))
            elif isinstance(command, PipInstall):
                arguments = tuple(_locate(a, directory) for a in command.arguments)
                self.installs.append(
                    Install(arguments, directory, stage.index, instruction.line, command.text)
                )
                if command.unknown:
                    self.note(
                        instruction,
                        f"{' '.join(command.unknown)}: pip options uv does not take; "
                        "installed without them",
                        "RUN",
                    )
            elif isinstance(command, Unsupported):
                unsupported.setdefault(command.reason, []).append(command.text)
            else:
                assert isinstance(command, NoOp)
        for reason, texts in unsupported.items():
            self.note(instruction, reason, "RUN " + " && ".join(texts))
        return run, operations


def _locate(argument: InstallArgument, directory: str) -> InstallArgument:
    """Files and paths of an install, absolute in the image (pip reads them relative to
    the directory the command runs in)."""
    if argument.kind in {"requirement", "constraint", "editable", "path"}:
        return InstallArgument(argument.kind, _absolute(argument.value, directory))
    return argument


def _absolute(path: str, directory: str) -> str:
    return posixpath.normpath(posixpath.join(directory, path)) if path else directory


def _command(instruction: Instruction) -> tuple[str, ...]:
    if instruction.form == "exec":
        return tuple(instruction.arguments)
    return ("/bin/sh", "-c", instruction.arguments[0] if instruction.arguments else "")


def _as_spec_command(instruction: Instruction) -> str:
    """How to have ECS and the twin run a ``HEALTHCHECK``: the spec's ``command``, with its
    timings where they are whole seconds ECS takes."""
    argv = _healthcheck(instruction).command
    if not argv:
        return ""  # HEALTHCHECK NONE
    shell = len(argv) == 3 and argv[:2] == ("/bin/sh", "-c")
    check: dict[str, object] = {"command": ["CMD-SHELL", argv[2]] if shell else ["CMD", *argv]}
    for flag, name, (low, high) in HEALTHCHECK_TIMINGS:
        value = instruction.flag(flag)
        seconds = _whole_seconds(value) if value is not None and flag != "retries" else None
        if flag == "retries" and value is not None and value.isdigit():
            seconds = int(value)
        if seconds is not None and low <= seconds <= high:
            check[name] = seconds
    fields = ", ".join(f"{key}: {json.dumps(value)}" for key, value in check.items())
    return f"; to run it, give the service health_check: {{{fields}}}"


def _whole_seconds(duration: str) -> int | None:
    """A Docker duration (``30s``, ``1m30s``) in whole seconds; None otherwise."""
    parts = DURATION_PART.findall(duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        return None
    total = sum(float(number) * DURATION_UNITS[unit] for number, unit in parts)
    return int(total) if total == int(total) else None


def _healthcheck(instruction: Instruction) -> HealthCheck:
    words = tuple(instruction.arguments)
    if words and words[0].upper() == "NONE":
        return HealthCheck((), instruction.line)
    if instruction.form == "exec":
        if words[:1] == ("CMD-SHELL",):
            return HealthCheck(("/bin/sh", "-c", " ".join(words[1:])), instruction.line)
        return HealthCheck(words[1:] if words[:1] == ("CMD",) else words, instruction.line)
    text = " ".join(words[1:] if words[:1] == ("CMD",) else words)
    return HealthCheck(("/bin/sh", "-c", text), instruction.line)


__all__ = ["BuildPlan", "DockerfileError", "Install", "Note", "RunConfig", "plan_build"]
