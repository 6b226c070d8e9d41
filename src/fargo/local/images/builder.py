"""Build an image from its Dockerfile as the twin can: its files laid out under a root
folder, its own Python environment, and how it runs.

    builder = ImageBuilder(state / "registry")   # environments: ~/.cache/fargo/environments
    built = builder.build("web", context=Path("services"), dockerfile=Path("web/Dockerfile"))
    built.root            # <state>/registry/web/<digest>/stages/1: /app of the image is root/app
    built.process.environment   # <cache>/environments/<key>: python, pip, its packages
    built.notes           # what the twin did not do as Docker would, with file and line

An image is cached by the digest of what its build reads (`fargo.build_context.image_tag`:
the Dockerfile and the context files its ``COPY``/``ADD`` read): building it again with
nothing changed reads those files and returns. Each stage the image needs is laid out in
a folder of its own (``COPY --from`` reads there); the last is the image. A new registry
(a new state folder) copies the stages from this machine's layouts when an identical
image was laid out before (`fargo.local.images.layouts`), instead of compiling again.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
import posixpath
import shutil
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from fargo.build_context import context_files, image_tag
from fargo.dockerfile import DockerfileError, parse_file
from fargo.local.images.cache import COMPLETE, CacheError, cache_folder, environments_cache
from fargo.local.images.environment import (
    Environments,
    InstallFailed,
    image_interpreter,
    root_path,
)
from fargo.local.images.layouts import STAGES, Layouts, layout_key
from fargo.local.images.lock import build_lock
from fargo.local.images.plan import (
    BuildPlan,
    CompileBytecode,
    CopyFiles,
    HealthCheck,
    MakeDirectories,
    RunConfig,
    plan_build,
)
from fargo.local.images.python import PythonNotFound, interpreter_identity, uv_binary

BUILD_FORMAT = "fargo-image-3"  # bump when the layout of a built image changes
COMPILE_TIMEOUT_SECONDS = 300.0
# compileall's default checks the source's modification time, which the image's layers
# do not keep (they are reproducible): the bytecode is checked by the source's hash.
TIMESTAMP_CHECKED = "checked-hash"


class BuildFailed(RuntimeError):
    """An image could not be built: the message names the image, the Dockerfile line and
    the cause (the installer's error)."""


@dataclass(frozen=True)
class ProcessImage:
    """What a task of the image runs: the Dockerfile's run configuration and the folder
    of the image's Python environment (None when it has none)."""

    run: RunConfig
    environment: Path | None
    notes: tuple[str, ...] = ()  # about the environment (another Python than FROM's)

    def to_json(self) -> dict[str, object]:
        run = dataclasses.asdict(self.run)
        environment = str(self.environment) if self.environment else None
        return {"run": run, "environment": environment, "notes": list(self.notes)}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> ProcessImage:
        run = dict(data["run"])  # type: ignore[call-overload]
        health = run.get("healthcheck")
        for name in ("entrypoint", "cmd", "exposed_ports", "venv_paths"):
            run[name] = tuple(run[name])
        run["healthcheck"] = (
            HealthCheck(tuple(health["command"]), health["line"]) if health else None
        )
        environment = data.get("environment")
        notes = tuple(str(n) for n in data.get("notes", ()))  # type: ignore[attr-defined]
        return cls(RunConfig(**run), Path(str(environment)) if environment else None, notes)


@dataclass(frozen=True)
class BuiltImage:
    repository: str
    digest: str  # of what the build read, the builder's format included
    root: Path
    process: ProcessImage
    notes: tuple[str, ...]
    cached: bool
    seconds: float


class ImageBuilder:
    """Builds images into ``directory`` (one folder per image and digest), their Python
    environments into ``environments`` (this machine's cache, `fargo.local.images.cache`,
    when None) and keeps their layouts beside those (`fargo.local.images.layouts`)."""

    def __init__(self, directory: Path, environments: Path | None = None) -> None:
        self.directory = directory
        self.environments_dir = environments

    def build(self, repository: str, context: Path, dockerfile: Path) -> BuiltImage:
        started = time.perf_counter()
        where = f"image {repository!r}"
        if not dockerfile.is_file():
            raise BuildFailed(f"{where}: no Dockerfile at {dockerfile}")
        try:
            tag = image_tag(context, dockerfile)
            plan = plan_build(parse_file(dockerfile))
        except DockerfileError as err:
            raise BuildFailed(f"{where}: {err}") from None
        digest = hashlib.sha256(f"{BUILD_FORMAT}\0{tag}".encode()).hexdigest()
        folder = self.directory / repository / f"sha256-{digest[:16]}"
        record = folder / "image.json"
        notes = tuple(str(note) for note in plan.notes)
        cached = self._cached(record, plan, folder)
        if cached is None:
            with build_lock(folder.with_name(folder.name + ".lock")):
                cached = self._cached(record, plan, folder)  # built by another process?
                if cached is None:
                    return self._build(
                        where, repository, digest, plan, context, dockerfile, started
                    )
        process, final = cached
        seconds = time.perf_counter() - started
        notes = (*process.notes, *notes)
        return BuiltImage(repository, digest, final, process, notes, True, seconds)

    def _cached(
        self, record: Path, plan: BuildPlan, folder: Path
    ) -> tuple[ProcessImage, Path] | None:
        """The image built before, if it is complete (its environment too)."""
        if not record.is_file():
            return None
        process = ProcessImage.from_json(json.loads(record.read_text()))
        env = process.environment
        if env is not None and not (env / COMPLETE).is_file():
            return None
        return process, folder / STAGES / str(plan.stages[-1].index)

    def _build(
        self,
        where: str,
        repository: str,
        digest: str,
        plan: BuildPlan,
        context: Path,
        dockerfile: Path,
        started: float,
    ) -> BuiltImage:
        folder = self.directory / repository / f"sha256-{digest[:16]}"
        record = folder / "image.json"
        notes = tuple(str(note) for note in plan.notes)
        roots = self._lay_out(where, plan, context, dockerfile, folder, digest)
        environment, warning = self._environment(where, plan, roots, digest, dockerfile)
        process = ProcessImage(plan.run, environment, (warning,) if warning else ())
        record.write_text(json.dumps(process.to_json()))
        notes = (*process.notes, *notes)
        seconds = time.perf_counter() - started
        final = roots[plan.stages[-1].index]
        return BuiltImage(repository, digest, final, process, notes, False, seconds)

    def _environment(
        self, where: str, plan: BuildPlan, roots: dict[int, Path], digest: str, dockerfile: Path
    ) -> tuple[Path | None, str | None]:
        """The image's environment, and a note when its Python is not the one ``FROM``
        asks for."""
        if not plan.installs and not plan.python_image:
            return None, None  # no Python asked for: the image runs this machine's programs
        try:
            directory = self.environments_dir or environments_cache()
            environments = Environments(directory, uv=uv_binary())
            folder, warning = environments.ensure(plan, roots=roots, image_digest=digest)
        except CacheError as err:
            raise BuildFailed(f"{where}: {err}") from None
        except InstallFailed as err:
            line = f"{dockerfile}:{err.line}: " if err.line else f"{dockerfile}: "
            raise BuildFailed(f"{where}: {line}{err}") from None
        except PythonNotFound as err:  # no uv at all
            raise BuildFailed(f"{where}: {dockerfile}: {err}") from None
        if warning is None:
            return folder, None
        return folder, f"{dockerfile}:{plan.stages[-1].line}: FROM: {warning}"

    def _lay_out(
        self,
        where: str,
        plan: BuildPlan,
        context: Path,
        dockerfile: Path,
        folder: Path,
        digest: str,
    ) -> dict[int, Path]:
        """Each stage's files under ``folder/stages/<index>``, written aside and renamed in:
        copied from this machine's layouts when the image was laid out before."""
        staging = folder.with_name(folder.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        interpreter: Path | None = None
        if any(isinstance(op, CompileBytecode) for stage in plan.stages for op in stage.operations):
            try:
                interpreter, _ = image_interpreter(plan, uv_binary())
            except PythonNotFound as err:  # no uv at all
                raise BuildFailed(f"{where}: {dockerfile}: {err}") from None
        compiled_by = None
        if interpreter is not None:
            compiled_by = interpreter_identity(interpreter) or str(interpreter)
        layouts, key = self._layouts(), layout_key(digest, compiled_by)
        if layouts is None or not layouts.copy(key, staging / STAGES):
            self._lay_out_stages(where, plan, context, dockerfile, staging, interpreter)
            if layouts is not None:
                layouts.keep(key, staging / STAGES)
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
        return {stage.index: folder / STAGES / str(stage.index) for stage in plan.stages}

    def _layouts(self) -> Layouts | None:
        """This machine's layouts (beside ``environments`` when the caller gave that);
        None when the cache cannot be used: the image is laid out without it (it only
        saves time), while an image with a Python environment fails on the same cache."""
        root = self.environments_dir.parent if self.environments_dir is not None else None
        try:
            return Layouts(cache_folder("layouts", root=root))
        except CacheError:
            return None

    def _lay_out_stages(
        self,
        where: str,
        plan: BuildPlan,
        context: Path,
        dockerfile: Path,
        staging: Path,
        interpreter: Path | None,
    ) -> None:
        allowed = {p.as_posix() for p in context_files(context, dockerfile)}
        for stage in plan.stages:
            root = staging / STAGES / str(stage.index)
            root.mkdir(parents=True)
            for operation in stage.operations:
                if isinstance(operation, MakeDirectories):
                    for path in operation.paths:
                        root_path(root, path).mkdir(parents=True, exist_ok=True)
                    continue
                if isinstance(operation, CompileBytecode):
                    assert interpreter is not None  # found by `_lay_out`
                    problem = _compile(operation, root, interpreter)
                    if problem:
                        raise BuildFailed(f"{where}: {dockerfile}:{operation.line}: {problem}")
                    continue
                try:
                    if operation.from_stage is None:
                        _copy(operation, context.resolve(), root, allowed)
                    else:
                        source = staging / STAGES / str(operation.from_stage)
                        _copy(operation, source, root, None)
                except FileNotFoundError as err:
                    raise BuildFailed(f"{where}: {dockerfile}:{operation.line}: {err}") from None


def _compile(operation: CompileBytecode, root: Path, interpreter: Path) -> str | None:
    """``RUN python -m compileall`` on the stage's files, by the image's interpreter (so
    the bytecode is for its version); what went wrong, or None."""
    options = list(operation.options)
    if "--invalidation-mode" in options:
        at = options.index("--invalidation-mode") + 1
        if at < len(options) and options[at] == "timestamp":
            options[at] = TIMESTAMP_CHECKED
    else:
        options += ["--invalidation-mode", TIMESTAMP_CHECKED]
    paths = [str(root_path(root, path)) for path in operation.paths]
    try:
        result = subprocess.run(
            [str(interpreter), "-I", "-m", "compileall", "-q", *options, *paths],
            capture_output=True,
            text=True,
            timeout=COMPILE_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"python -m compileall failed: {err}"
    if result.returncode == 0:
        return None
    output = (result.stdout + result.stderr).replace(str(root), "").strip()
    return "python -m compileall failed:\n" + "\n".join(output.splitlines()[-12:])


def _copy(operation: CopyFiles, source_root: Path, root: Path, allowed: set[str] | None) -> None:
    """``COPY``/``ADD`` as Docker does: a folder's contents go into the destination, a file
    to the destination (into it when it ends in ``/``); ``allowed``: the context files
    ``.dockerignore`` lets through (None: a stage's files, all)."""
    destination = operation.destination
    for pattern in operation.sources:
        relative = posixpath.normpath(pattern).lstrip("/")
        matches = _glob(source_root, relative)
        if not matches:
            where = "the build context" if allowed is not None else "that stage's files"
            raise FileNotFoundError(f"{pattern}: not found in {where}")
        for match in matches:
            name = match.relative_to(source_root).as_posix() if match != source_root else "."
            if match.is_dir() and not match.is_symlink():
                target = root_path(root, destination.rstrip("/") or "/")
                _copy_tree(match, target, name, allowed)
            elif operation.extract and tarfile.is_tarfile(match):
                target = root_path(root, destination.rstrip("/") or "/")
                target.mkdir(parents=True, exist_ok=True)
                with tarfile.open(match) as archive:
                    archive.extractall(target, filter="data")
            elif allowed is None or name in allowed:
                if destination.endswith("/"):
                    target = root_path(root, destination) / match.name
                else:
                    target = root_path(root, destination)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(match, target, follow_symlinks=False)


def _copy_tree(source: Path, target: Path, name: str, allowed: set[str] | None) -> None:
    target.mkdir(parents=True, exist_ok=True)
    prefix = "" if name == "." else name + "/"
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if (
            allowed is not None
            and not path.is_dir()
            and prefix + relative.as_posix() not in allowed
        ):
            continue
        destination = target / relative
        if path.is_dir() and not path.is_symlink():
            destination.mkdir(parents=True, exist_ok=True)
        else:
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination, follow_symlinks=False)


def _glob(root: Path, pattern: str) -> list[Path]:
    if pattern in ("", "."):
        return [root]
    if not any(c in pattern for c in "*?["):
        path = root / pattern
        return [path] if path.exists() or path.is_symlink() else []
    parts = pattern.split("/")
    found = [root]
    for part in parts:
        found = [
            child
            for base in found
            if base.is_dir()
            for child in sorted(base.iterdir())
            if fnmatch.fnmatchcase(child.name, part)
        ]
    return found
