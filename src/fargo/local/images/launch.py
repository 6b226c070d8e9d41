"""A task's process from its image: argv, environment and working directory.

    process = task_process(image.process, root=task.root, env=hooks.environment(task),
                           namespaced=network.mode == "vpc")
    await network.launch(process.argv, env=process.env, cwd=process.cwd, ...)

What the Dockerfile says holds, as far as a process can have it:

- ``python``, ``python3``, ``pip`` are the image's environment (its ``bin`` first on
  ``PATH``, ``VIRTUAL_ENV`` set); a venv folder the Dockerfile made (``/opt/venv``) names
  that environment in ``PATH``, other variables and the command.
- ``ENV`` first, then the task's environment over it (the spec's ``environment``, what
  ECS sets: ``PORT``, ``ECS_CONTAINER_METADATA_URI_V4``, …), as a task definition's
  environment overrides an image's. ``PATH`` is the image's, then this machine's;
  ``PYTHONPATH`` the twin's resolver (loopback mode), then the image's.
- Absolute paths of the image: in VPC mode its folders are mounted at those paths in the
  task's own mount namespace (`fargo.local.images.rootfs`) and the task starts in its
  ``WORKDIR``; so in loopback mode for an image with a ``USER`` (the task runs as that
  user: see `fargo.local.images.user`). Otherwise loopback mode
  has no mount namespace: a path of the image's own
  (``/app/…``, or one whose top folder this machine does not have) in the command or an
  ``ENV`` value is rewritten to the image's root folder, and the task starts in
  ``<root>/<WORKDIR>``; a path inside a shell-form command's text is not rewritten.
- A program that is neither in the image nor on this machine stops the task with
  ``CannotStartContainerError`` (Docker's words: executable file not found in $PATH).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from fargo.local.cloudmap.resolver import DNS_LIBRARY_VARIABLE
from fargo.local.ec2 import id_map
from fargo.local.images import rootfs
from fargo.local.images.builder import ProcessImage
from fargo.local.images.user import Switch, TaskUser, switch_for, task_user
from fargo.spec.model import ContainerHealthCheck

if TYPE_CHECKING:
    from fargo.local.ecs.task import Task

ROOTFS_SCRIPT = Path(rootfs.__file__).resolve()
# This machine's loopback as a command names it: a task's own address in loopback mode.
LOCALHOST = re.compile(r"(?<![\w.-])(?:127\.0\.0\.1|localhost)(?![\w-]|\.\w)")
# The task's environment may not set these: the image's environment decides them.
MERGED = ("PATH", "PYTHONPATH")


class ProgramNotFound(RuntimeError):
    """The image's command names a program neither the image nor this machine has."""


@dataclass(frozen=True)
class TaskProcess:
    argv: list[str]
    env: dict[str, str]
    cwd: Path


def task_process(
    image: ProcessImage, *, root: Path, env: Mapping[str, str], namespaced: bool
) -> TaskProcess:
    """How to start a task of ``image`` whose files are at ``root``; ``env``: what the twin
    sets for the task (`TaskHooks.environment`)."""
    run = image.run
    switched = runs_as(image, namespaced=namespaced)
    isolated = namespaced or switched is not None  # a mount namespace of its own
    mapper = _PathMapper(image, root, rewrite_image_paths=not isolated)
    argv = [mapper.path(word) for word in run.argv]
    if not argv:
        raise ProgramNotFound("the image has no CMD or ENTRYPOINT: nothing to run")
    merged = {name: mapper.value(value) for name, value in run.env.items()}
    merged.update({k: v for k, v in env.items() if k not in MERGED})
    merged["PATH"] = _join(
        [str(image.environment / "bin")] if image.environment else [],
        merged.get("PATH", "").split(os.pathsep),
        env.get("PATH", os.environ.get("PATH", "")).split(os.pathsep),
    )
    merged["PYTHONPATH"] = _join(
        env.get("PYTHONPATH", "").split(os.pathsep),
        mapper.value(run.env.get("PYTHONPATH", "")).split(os.pathsep),
    )
    if not merged["PYTHONPATH"]:
        del merged["PYTHONPATH"]
    if image.environment is not None:
        merged["VIRTUAL_ENV"] = str(image.environment)
    _check_program(argv[0], merged["PATH"], root, isolated)
    workdir = run.working_dir or "/"
    if isolated:
        wrapper = [sys.executable, "-I", "-S", str(ROOTFS_SCRIPT), str(root), workdir]
        switch = None
        if switched is not None:
            user, switch = switched
            if switch is Switch.ONE_ID:  # it makes its user and mount namespaces itself
                wrapper += ["--user", f"{user.spec}:{user.home}", "--user-namespace", "own"]
            else:
                wrapper += _as_user(user, image, merged)
        if not namespaced:  # loopback mode
            if switch is not Switch.ONE_ID:  # the mount namespace is made here
                unshare = shutil.which("unshare")
                if unshare is None:
                    raise ProgramNotFound(
                        "unshare (util-linux) is needed to run a task as its USER"
                    )
                # Not root: a user namespace of the task's own, its root the user running
                # fargo, its other ids the user's subordinate ids (newuidmap, --map-auto).
                own = list(id_map.OWN_NAMESPACE) if switch is Switch.SUBORDINATE else []
                wrapper = [unshare, *own, "--mount", "--propagation", "private", *wrapper]
            wrapper += ["--network", "host"]
        return TaskProcess([*wrapper, "--", *argv], merged, root)
    cwd = root / workdir.lstrip("/")
    cwd.mkdir(parents=True, exist_ok=True)
    return TaskProcess(argv, merged, cwd)


def check_command(task: Task, check: ContainerHealthCheck, *, namespaced: bool) -> list[str] | None:
    """The container health check's command as it runs in ``task`` (None: the HTTP GET).

    A ``CMD`` form's image paths are mapped as the task's command's are (a venv folder the
    Dockerfile made is the image's environment; loopback mode, no mount namespace: the
    image's own paths are its folder); a ``CMD-SHELL`` line's text is not rewritten. In
    loopback mode (``namespaced`` false) the task has no network namespace, so
    ``127.0.0.1`` and ``localhost`` in the command, a shell line's text too, name the task's
    own address: what they reach inside its namespace on ECS."""
    argv = check.argv()
    if argv is None or check.command is None:
        return None
    image = task.image.process
    if check.command[0] == "CMD" and image is not None and task.root is not None:
        isolated = namespaced or runs_as(image, namespaced=namespaced) is not None
        mapper = _PathMapper(image, task.root, rewrite_image_paths=not isolated)
        argv = [mapper.path(word) for word in argv]
    if not namespaced:
        argv = [LOCALHOST.sub(task.ip, word) for word in argv]
    return argv


def runs_as(image: ProcessImage, *, namespaced: bool) -> tuple[TaskUser, Switch] | None:
    """The user a task of ``image`` runs as, its ``USER``, and how it becomes that user
    (see `fargo.local.images.user`); None: it runs as the twin does."""
    if not image.run.user:
        return None
    user = task_user(image.run.user)
    switch = switch_for(user.uid, user.gid, namespaced=namespaced)
    return None if switch is None else (user, switch)


def _as_user(user: TaskUser, image: ProcessImage, env: Mapping[str, str]) -> list[str]:
    """`rootfs`'s options that run the task as ``user``, with what it must read exposed:
    its environment, the interpreter the environment was made from, its PYTHONPATH, the
    dnspython the loopback mode's resolver falls back on."""
    exposed = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p.startswith("/")]
    library = env.get(DNS_LIBRARY_VARIABLE)
    if library:
        exposed += [library, str((Path(library) / "dns").resolve())]
    if image.environment is not None:
        exposed.append(str(image.environment))
        exposed += _interpreter_home(image.environment)
    options = ["--user", f"{user.spec}:{user.home}"]
    for path in dict.fromkeys(exposed):
        options += ["--expose", path]
    return options


def _interpreter_home(environment: Path) -> list[str]:
    """The installation a venv's interpreter belongs to (``home`` in ``pyvenv.cfg`` is its
    ``bin``), as this machine has it (symlinks resolved)."""
    try:
        lines = (environment / "pyvenv.cfg").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        key, _, value = line.partition("=")
        if key.strip() == "home" and value.strip():
            home = Path(value.strip())
            return [str(home.parent), str(home.resolve().parent)]
    return []


def _join(*parts: list[str]) -> str:
    return os.pathsep.join(dict.fromkeys(p for group in parts for p in group if p))


def _check_program(program: str, path: str, root: Path, namespaced: bool) -> None:
    if "/" in program:
        candidates = [Path(program)]
        if namespaced:
            candidates.append(root / program.lstrip("/"))
        if any(c.is_file() and os.access(c, os.X_OK) for c in candidates):
            return
    else:
        directories = path.split(os.pathsep)
        if namespaced:
            directories += [str(root / d.lstrip("/")) for d in directories if d.startswith("/")]
        if shutil.which(program, path=os.pathsep.join(directories)):
            return
    raise ProgramNotFound(
        f'exec: "{program}": executable file not found in $PATH (neither the image nor '
        "this machine has it: the twin runs programs of this machine; install it here, "
        "or build it in the image's context and COPY it)"
    )


class _PathMapper:
    """Paths of the image → where they are for the task."""

    def __init__(self, image: ProcessImage, root: Path, *, rewrite_image_paths: bool) -> None:
        self.venvs = image.run.venv_paths if image.environment else ()
        self.environment = image.environment
        self.root = root
        self.rewrite = rewrite_image_paths

    def path(self, word: str) -> str:
        if not word.startswith("/"):
            return word
        for venv in self.venvs:
            if word == venv or word.startswith(venv.rstrip("/") + "/"):
                assert self.environment is not None
                return str(self.environment) + word[len(venv.rstrip("/")) :]
        if not self.rewrite:
            return word
        inside = self.root / word.lstrip("/")
        top = word.strip("/").split("/", 1)[0]
        if top and (
            inside.exists() or ((self.root / top).exists() and not Path("/", top).exists())
        ):
            return str(inside)
        return word

    def value(self, text: str) -> str:
        """An ``ENV`` value: each ``:``-separated absolute path mapped."""
        return os.pathsep.join(self.path(part) for part in text.split(os.pathsep))


class _Hooks(Protocol):
    def environment(self, task: Task) -> dict[str, str]: ...


class _Network(Protocol):
    @property
    def mode(self) -> str: ...


def task_process_of(
    task: Task, hooks: _Hooks, network: _Network, secrets: Mapping[str, str] | None = None
) -> tuple[list[str], dict[str, str], Path]:
    """``task``'s argv, environment and working directory (the supervisor's one call).
    ``secrets``: the task's secret values; what the twin itself sets (PORT, HOST, …) wins
    over them, as over the spec's environment."""
    assert task.root is not None
    environment = {**(secrets or {}), **hooks.environment(task)}
    image = task.image.process
    if image is None:  # an image the builder did not make: its command as it is
        return list(task.image.command), environment, task.root
    process = task_process(image, root=task.root, env=environment, namespaced=network.mode == "vpc")
    return process.argv, process.env, process.cwd
