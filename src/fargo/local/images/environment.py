"""An image's own Python environment: a virtual environment made by ``uv``, its
dependencies installed by ``uv pip install``, cached by content.

    environments = Environments(environments_cache(), uv=uv_binary())
    folder, warning = environments.ensure(plan, roots={0: stage_root}, image_digest=digest)

The key is a digest of the Python version asked for, every install's arguments and the
content of the requirement and constraint files it reads, and of those they read in turn
(``-r``, ``-c``: relative to the file naming them, an absolute one on this machine, where
``uv`` reads it); when an install or one of its files installs a local path, the image's
own digest too. An unchanged image finds its environment by that key at once; a changed
one gets a new environment, filled from uv's cache (so only what changed is downloaded or
built), while tasks still running keep the old one. The environments are this machine's
(`fargo.local.images.cache`): every twin of the user shares them.

The installs compile their modules' bytecode, as ``pip install`` does: a task, often
running as another user than the one who built it, finds it made and does not compile
its dependencies each time it starts.

uv does not read pip's configuration: this machine's index settings (``pip.conf`` files
and ``PIP_*`` variables) are passed on as ``UV_*`` ones (`uv_environment`), so an image
installs from the same place ``pip install`` would.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from fargo.local.images.cache import COMPLETE, LOCK_SUFFIX, mark_used, prune_unused
from fargo.local.images.lock import build_lock
from fargo.local.images.plan import BuildPlan, Install
from fargo.local.images.python import PythonNotFound, find_python
from fargo.local.images.run import InstallArgument, is_path, requirement_file_arguments
from fargo.local.twins import machine_uid

ENVIRONMENT_FORMAT = "fargo-env-3"  # bump when what goes into an environment changes
INSTALL_TIMEOUT_SECONDS = 600.0
STDERR_TAIL_LINES = 12
# pip setting (as in pip.conf, without "--") → uv's variable
PIP_TO_UV = {
    "index-url": "UV_INDEX_URL",
    "extra-index-url": "UV_EXTRA_INDEX_URL",
    "find-links": "UV_FIND_LINKS",
    "constraint": "UV_CONSTRAINT",
    "cert": "SSL_CERT_FILE",
    "trusted-host": "UV_INSECURE_HOST",
}


class InstallFailed(RuntimeError):
    """``uv`` could not make or fill the environment; the message names the line."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


def root_path(root: Path, image_path: str) -> Path:
    """Where the absolute image path ``image_path`` lies in the image's root folder."""
    return root / image_path.lstrip("/")


def environment_key(plan: BuildPlan, roots: Mapping[int, Path], image_digest: str) -> str:
    sha = hashlib.sha256(ENVIRONMENT_FORMAT.encode())
    sha.update(json.dumps(plan.python).encode())
    for install in plan.installs:
        sha.update(json.dumps([[a.kind, a.value] for a in install.arguments]).encode())
        root = roots[install.stage]
        for content in _inputs(install.arguments, root, image_digest, set()):
            sha.update(content)
    return sha.hexdigest()[:32]


def _inputs(
    arguments: Sequence[InstallArgument],
    root: Path,
    image_digest: str,
    seen: set[Path],
    directory: Path | None = None,
) -> Iterator[bytes]:
    """What ``arguments`` install, for the key: each file's content and, recursively, what
    it reads, as ``uv`` reads it (``directory``: the folder of the file naming them, where
    their relative paths start; None: the install's own, whose paths are the image's);
    for a local path, the image's digest. A file read before counts by name."""
    for argument in arguments:
        value = argument.value
        if argument.kind in {"editable", "path"} and "://" not in value and "+" not in value:
            yield image_digest.encode()  # not git+https://…: the image's own files
        if argument.kind not in {"requirement", "constraint"}:
            continue
        # an absolute value in a file stays this machine's, as uv reads it
        file = root_path(root, value) if directory is None else directory / value
        if file in seen:
            yield f"<{value}>".encode()
            continue
        seen.add(file)
        try:
            text = file.read_bytes()
        except OSError:
            yield b"<missing>"
            continue
        yield text
        for line in _option_lines(text.decode(errors="replace")):
            nested = requirement_file_arguments(line)
            yield from _inputs(nested, root, image_digest, seen, file.parent)


def _option_lines(text: str) -> Iterator[str]:
    """A requirements file's lines that may name a file or a local path (an option, a path):
    not the pinned packages ``poetry export`` writes by the thousand; each with its ``\\``
    continuations joined, as pip joins them."""
    for line in re.sub(r"\\\r?\n", "", text).splitlines():
        word = line.lstrip()
        if word.startswith("-") or is_path(word.split(" ", 1)[0]):
            yield line


def image_interpreter(plan: BuildPlan, uv: Path) -> tuple[Path, str | None]:
    """The interpreter an image's environment is made on: the Python its ``FROM`` asks
    for; else this one, with a warning saying so."""
    try:
        return find_python(plan.python, uv, env=uv_environment()), None
    except PythonNotFound as err:
        # The build goes on, on the Python fargo runs on, and says so (a warning with
        # the FROM line): a minor version apart, most services run the same.
        running = "{}.{}".format(*sys.version_info[:2])
        interpreter = Path(sys.executable)
        return interpreter, f"{err}; the image runs on Python {running} ({interpreter}) instead"


class Environments:
    """The environments of every image, one folder per key."""

    def __init__(self, directory: Path, *, uv: Path) -> None:
        self.directory = directory
        self.uv = uv

    def ensure(
        self, plan: BuildPlan, *, roots: Mapping[int, Path], image_digest: str
    ) -> tuple[Path, str | None]:
        """The environment for ``plan`` (``roots``: each stage's laid-out files, where the
        installs' files are); (its folder, a warning when it runs on another Python than
        the image's ``FROM`` asks for)."""
        key = environment_key(plan, roots, image_digest)
        folder = self.directory / key
        marker = folder / COMPLETE
        if not marker.is_file():
            with build_lock(folder.with_name(folder.name + LOCK_SUFFIX)):
                if not marker.is_file():  # not made by another process meanwhile
                    self._make(folder, plan, roots)
                    prune_unused(self.directory)
        mark_used(folder)
        return folder, json.loads(marker.read_text()).get("warning")

    def _make(self, folder: Path, plan: BuildPlan, roots: Mapping[int, Path]) -> None:
        marker = folder / COMPLETE
        # The venv is made where it will stay: its scripts name their interpreter by path.
        shutil.rmtree(folder, ignore_errors=True)
        interpreter, warning = image_interpreter(plan, self.uv)
        self._uv(["venv", "--seed", "--quiet", "--python", str(interpreter), str(folder)], None)
        for install in plan.installs:
            self._install(folder, install, roots[install.stage])
        record = {"python": str(interpreter), "asked": plan.python, "warning": warning}
        marker.write_text(json.dumps(record))

    def _install(self, folder: Path, install: Install, root: Path) -> None:
        argv = ["pip", "install", "--compile-bytecode", "--python", str(folder / "bin" / "python")]
        for argument in install.arguments:
            if argument.kind == "requirement":
                argv += ["-r", str(root_path(root, argument.value))]
            elif argument.kind == "constraint":
                argv += ["-c", str(root_path(root, argument.value))]
            elif argument.kind == "editable":
                argv += ["-e", str(root_path(root, argument.value))]
            elif argument.kind == "path":
                argv.append(str(root_path(root, argument.value)))
            else:
                argv.append(argument.value)
        if argv[5:]:
            directory = root_path(root, install.directory)
            self._uv(argv, install.line, cwd=directory if directory.is_dir() else root)

    def _uv(self, arguments: list[str], line: int | None, cwd: Path | None = None) -> None:
        env = {**os.environ, **uv_environment()}
        try:
            done = subprocess.run(
                [str(self.uv), *arguments],
                capture_output=True,
                text=True,
                cwd=cwd,
                env=env,
                timeout=INSTALL_TIMEOUT_SECONDS,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise InstallFailed(f"uv {arguments[0]} failed: {err}", line) from None
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-STDERR_TAIL_LINES:])
            raise InstallFailed(f"uv {' '.join(arguments[:2])} failed:\n{tail}", line)


def pip_settings() -> dict[str, str]:
    """pip's settings as pip reads them: its configuration files (global, user, then
    ``PIP_CONFIG_FILE``; sections ``global`` then ``install``), then ``PIP_*`` variables."""
    files = [Path("/etc/pip.conf"), Path("/etc/xdg/pip/pip.conf")]
    config_home = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config"))
    files += [Path.home() / ".pip" / "pip.conf", config_home / "pip" / "pip.conf"]
    if os.environ.get("PIP_CONFIG_FILE"):
        files.append(Path(os.environ["PIP_CONFIG_FILE"]))
    settings: dict[str, str] = {}
    for file in files:
        parser = configparser.RawConfigParser()
        try:
            parser.read(file)
        except configparser.Error:
            continue
        for section in ("global", "install"):
            if parser.has_section(section):
                settings.update(parser.items(section))
    for name in PIP_TO_UV:
        value = os.environ.get("PIP_" + name.upper().replace("-", "_"))
        if value:
            settings[name] = value
    return settings


def uv_environment() -> dict[str, str]:
    """This machine's pip index settings as uv's variables (a ``UV_*`` already set wins).
    With an extra index, pip picks the best version across all of them: so does uv then
    (its own default takes the first index that has the package)."""
    result: dict[str, str] = {}
    for name, value in pip_settings().items():
        variable = PIP_TO_UV.get(name)
        if variable and variable not in os.environ:
            result[variable] = " ".join(value.split())
    if "UV_EXTRA_INDEX_URL" in result and "UV_INDEX_STRATEGY" not in os.environ:
        result["UV_INDEX_STRATEGY"] = "unsafe-best-match"
    if "UV_CACHE_DIR" not in os.environ and not os.access(Path.home(), os.W_OK):
        # A user without a home of its own (nobody): uv's cache in the temporary folder,
        # named by the machine's uid (a rootless VPC control plane is uid 0 in its own user
        # namespace, where the folder of the machine's root is not its to write).
        result["UV_CACHE_DIR"] = str(Path(tempfile.gettempdir()) / f"fargo-{machine_uid()}" / "uv")
    return result
