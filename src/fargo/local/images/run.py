"""A ``RUN`` instruction read as the simple commands it is made of, and what each means to
the twin.

    commands = simple_commands("python -m venv /opt/venv && /opt/venv/bin/pip install -r r.txt")
    [classify(c) for c in commands]     # [Venv('/opt/venv'), PipInstall(...)]

The twin runs no shell at build time: it understands the commands that shape a Python
image (``pip``/``uv pip`` installs, ``python -m venv``, ``mkdir``, ``cd``) and reports the
rest (`Unsupported`, with why and what the twin does instead). A command with pipes,
redirections, subshells or substitutions is reported whole.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

SEPARATORS = frozenset({"&&", ";", "||", "&", "\n"})
SHELL_SYNTAX = frozenset({"|", "(", ")", ">", "<", ">>", "<<", ">&", "<&", "|&", ";;"})
PIP_PROGRAMS = frozenset({"pip", "pip3"})
PYTHON_PROGRAMS = frozenset({"python", "python3"})
VENV_PROGRAMS = frozenset({"virtualenv"})
SYSTEM_PACKAGERS = frozenset({"apt-get", "apt", "apk", "yum", "dnf", "microdnf", "zypper"})
ACCOUNTS = frozenset({"useradd", "adduser", "groupadd", "addgroup", "chown", "chgrp", "usermod"})
PROJECT_INSTALLERS = frozenset({"poetry", "pdm", "pipenv", "hatch", "conda", "mamba"})
NO_OPS = frozenset({"set", "true", ":", "echo"})

# pip options that take a value and mean nothing to `uv pip install` here (caches, output,
# where pip would put things the venv decides).
DROPPED_WITH_VALUE = frozenset({"--progress-bar", "--root-user-action", "--cache-dir", "--log"})
DROPPED = frozenset(
    {
        "--no-cache-dir",
        "--no-cache",
        "--user",
        "--disable-pip-version-check",
        "--no-warn-script-location",
        "--break-system-packages",
        "--no-input",
        "--no-color",
        "--compile",
        "--no-compile",
        "-q",
        "-qq",
        "-qqq",
        "--quiet",
        "-v",
        "-vv",
        "--verbose",
        "--force-reinstall",
        "--ignore-installed",
        "-I",
        "--system",
    }
)
# compileall's options: those that change what is compiled, or how, are kept; those that
# only name the files in the bytecode or in its report are left out (the paths differ).
COMPILEALL_OPTIONS = frozenset({"-l", "-f", "-b", "--hardlink-dupes"})
COMPILEALL_OPTIONS_WITH_VALUE = frozenset({"-r", "-x", "-o", "--invalidation-mode"})
COMPILEALL_NAMING = frozenset({"-d", "-s", "-p", "-i", "-e", "-j"})
# Options `uv pip install` understands as pip does, with their value if they take one.
PASSED_WITH_VALUE = frozenset(
    {
        "-i",
        "--index-url",
        "--extra-index-url",
        "-f",
        "--find-links",
        "--no-binary",
        "--only-binary",
        "--index-strategy",
        "--python-version",
    }
)
PASSED = frozenset(
    {
        "--pre",
        "--no-deps",
        "-U",
        "--upgrade",
        "--no-build-isolation",
        "--require-hashes",
        "--no-index",
    }
)
FILE_OPTIONS = {"-r": "requirement", "--requirement": "requirement", "-c": "constraint"}
FILE_OPTIONS["--constraint"] = "constraint"
FILE_OPTIONS["-e"] = "editable"
FILE_OPTIONS["--editable"] = "editable"


@dataclass(frozen=True)
class InstallArgument:
    """One argument of an install: a ``requirement`` or ``constraint`` file, an ``editable``
    or ``path`` (relative to the command's directory, or absolute in the image), a
    ``package`` specifier, or an ``option`` (with its value as the next item)."""

    kind: str
    value: str


@dataclass(frozen=True)
class PipInstall:
    """``pip install …``, ``python -m pip install …``, ``uv pip install …``, ``uv pip sync …``."""

    arguments: tuple[InstallArgument, ...]
    dropped: tuple[str, ...]  # pip options the twin has no use for (reported when unknown)
    unknown: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class Venv:
    """``python -m venv PATH``, ``virtualenv PATH``, ``uv venv PATH``: the image's one
    environment stands for it."""

    path: str
    text: str


@dataclass(frozen=True)
class CompileAll:
    """``python -m compileall [options] PATH…``: the bytecode of the files under the paths,
    made at build time. ``options``: those that change what is compiled or how
    (`COMPILEALL_OPTIONS`); the others only name or report, and are left out."""

    paths: tuple[str, ...]
    options: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class Mkdir:
    paths: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class ChangeDirectory:
    path: str
    text: str


@dataclass(frozen=True)
class NoOp:
    text: str


@dataclass(frozen=True)
class Unsupported:
    """A command the twin does not run; ``reason`` says what it does instead."""

    text: str
    reason: str


Command = PipInstall | Venv | CompileAll | Mkdir | ChangeDirectory | NoOp | Unsupported


def simple_commands(script: str) -> list[list[str]]:
    """The commands of a shell-form ``RUN``, split at ``&&``, ``;``, ``||`` and newlines;
    a command using other shell syntax keeps its tokens (`classify` reports it)."""
    lexer = shlex.shlex(script.replace("\\\n", " "), posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    commands: list[list[str]] = []
    current: list[str] = []
    try:
        tokens = list(lexer)
    except ValueError:  # an unclosed quote: Docker's shell would refuse it as well
        return [[script]]
    for token in tokens:
        if token in SEPARATORS:
            if current:
                commands.append(current)
            current = []
        else:
            current.append(token)
    if current:
        commands.append(current)
    return commands


def classify(words: list[str]) -> Command:
    """What a simple command means to the twin."""
    text = shlex.join(words)
    if any(word in SHELL_SYNTAX or "$(" in word or "`" in word for word in words):
        return Unsupported(text, "shell pipes, redirections and substitutions are not run")
    while words and "=" in words[0] and not words[0].startswith("-"):
        words = words[1:]  # NAME=value before a command: an environment for that command
    if not words:
        return NoOp(text)
    program = words[0].rsplit("/", 1)[-1]
    rest = words[1:]
    if program in NO_OPS:
        return NoOp(text)
    if program == "cd" and len(rest) == 1:
        return ChangeDirectory(rest[0], text)
    if program == "mkdir":
        paths = tuple(word for word in rest if not word.startswith("-"))
        return Mkdir(paths, text) if paths else NoOp(text)
    if program in PYTHON_PROGRAMS or _is_python(program):
        return _python(rest, text)
    if program in PIP_PROGRAMS or program.startswith("pip3."):
        return _pip(rest, text)
    if program == "uv":
        if rest[:2] in (["pip", "install"], ["pip", "sync"]):
            sync = rest[1] == "sync"
            return _install(rest[2:], text, positional_kind="requirement" if sync else None)
        if rest[:1] == ["venv"]:
            return _venv(rest[1:], text)
    if program in VENV_PROGRAMS:
        return _venv(rest, text)
    if program in SYSTEM_PACKAGERS:
        return Unsupported(
            text,
            "system packages are not installed: tasks use this machine's programs and "
            "libraries (install them here if the service needs them)",
        )
    if program in ACCOUNTS:
        return Unsupported(
            text,
            "users and file owners are not changed: the image's files are the user's running "
            "fargo, readable by the task's user as their modes say (USER: see its note)",
        )
    if program in PROJECT_INSTALLERS or program == "uv":
        return Unsupported(
            text,
            "project installers are not run: export the locked requirements (poetry export "
            "-f requirements.txt, pdm export, uv export) and RUN pip install -r them",
        )
    return Unsupported(text, "not run: the twin runs only pip/uv installs, venv and mkdir")


def _is_python(program: str) -> bool:
    version = program.removeprefix("python")
    return version != program and all(part.isdigit() for part in version.split(".") if part)


def _python(rest: list[str], text: str) -> Command:
    if rest[:2] == ["-m", "pip"]:
        return _pip(rest[2:], text)
    if rest[:2] in (["-m", "venv"], ["-m", "virtualenv"]):
        return _venv(rest[2:], text)
    if rest[:2] == ["-m", "compileall"]:
        return _compileall(rest[2:], text)
    return Unsupported(text, "Python programs are not run at build time")


def _compileall(words: list[str], text: str) -> Command:
    """Its paths and the options kept; without paths it compiles ``sys.path``, which
    the image's environment already is (its installs compile)."""
    paths: list[str] = []
    options: list[str] = []
    remaining = iter(words)
    for word in remaining:
        name, equals, inline = word.partition("=") if word.startswith("--") else (word, "", "")
        if name in COMPILEALL_OPTIONS_WITH_VALUE or name in COMPILEALL_NAMING:
            value = inline if equals else next(remaining, "")
            if name in COMPILEALL_OPTIONS_WITH_VALUE:
                options += [name, value]
        elif name in COMPILEALL_OPTIONS:
            options.append(name)
        elif not word.startswith("-"):
            paths.append(word)
    if not paths:
        return NoOp(text)
    return CompileAll(tuple(paths), tuple(options), text)


def _pip(rest: list[str], text: str) -> Command:
    if rest[:1] == ["install"]:
        return _install(rest[1:], text)
    return Unsupported(text, "only pip install is run")


def _venv(rest: list[str], text: str) -> Command:
    paths = [word for word in rest if not word.startswith("-")]
    if len(paths) != 1:
        return Unsupported(text, "a venv command names one folder")
    return Venv(paths[0], text)


def _install(words: list[str], text: str, positional_kind: str | None = None) -> PipInstall:
    arguments: list[InstallArgument] = []
    dropped: list[str] = []
    unknown: list[str] = []
    position = 0
    while position < len(words):
        word = words[position]
        position += 1
        name, equals, inline = word.partition("=") if word.startswith("--") else (word, "", "")
        if name in FILE_OPTIONS or (len(word) > 2 and word[:2] in ("-r", "-c", "-e")):
            kind = FILE_OPTIONS.get(name) or FILE_OPTIONS[word[:2]]
            if name in FILE_OPTIONS and not equals:
                value = words[position] if position < len(words) else ""
                position += 1
            else:
                value = inline if equals else word[2:]
            arguments.append(InstallArgument(kind, value))
        elif name in DROPPED_WITH_VALUE:
            dropped.append(word)
            if not equals:
                position += 1
        elif name in DROPPED:
            dropped.append(word)
        elif name in PASSED_WITH_VALUE:
            value = inline if equals else (words[position] if position < len(words) else "")
            if not equals:
                position += 1
            arguments += [InstallArgument("option", name), InstallArgument("value", value)]
        elif name in PASSED:
            arguments.append(InstallArgument("option", name))
        elif word.startswith("-"):
            unknown.append(word)
        elif positional_kind is not None:
            arguments.append(InstallArgument(positional_kind, word))
        elif is_path(word):
            arguments.append(InstallArgument("path", word))
        else:
            arguments.append(InstallArgument("package", word))
    return PipInstall(tuple(arguments), tuple(dropped), tuple(unknown), text)


def requirement_file_arguments(line: str) -> tuple[InstallArgument, ...]:
    """A requirements file's line (its continuations joined) as install arguments: the
    files it reads (``-r``, ``-c``), the local paths it installs, its packages."""
    try:
        words = shlex.split(line, comments=True)
    except ValueError:  # an unclosed quote: pip reads no option from it either
        return ()
    return _install(words, line).arguments


ARCHIVES = (".whl", ".tar.gz", ".zip")  # a package's file, installed from its path


def is_path(word: str) -> bool:
    """Whether an install's ``word`` is a local path (``.``, ``/app/lib``, a wheel file)."""
    if "://" in word or " @ " in word:
        return False
    return word.startswith((".", "/")) or word.endswith(ARCHIVES)
