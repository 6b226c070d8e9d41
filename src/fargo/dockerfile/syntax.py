"""A Dockerfile's text into instructions, read the way BuildKit's parser reads it.

    directives, instructions = read(text, path=Path("Dockerfile"))

- parser directives (``# syntax=…``, ``# escape=…``) only on the first lines, before
  any comment, blank line or instruction; ``escape`` is ``\\`` or a backtick;
- a line ending in the escape character (spaces after it allowed) continues on the next;
  comment lines and empty lines inside a continuation are skipped;
- comments are whole lines starting with ``#`` (``RUN echo #1`` is no comment);
- heredocs (``RUN <<EOF``, ``COPY <<EOF /dst``) take the lines up to their terminator;
- flags (``--from=build``) are the ``--`` words right after the keyword;
- ``RUN``, ``CMD``, ``ENTRYPOINT``, ``SHELL``, ``COPY``, ``ADD`` and ``VOLUME`` take a
  JSON array of strings (the exec form) or a plain line (the shell form).

Variables are not substituted here (`fargo.dockerfile.variables` does it, in
`fargo.dockerfile.model`, where the scopes of ``ARG`` and ``ENV`` are known).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fargo.dockerfile.errors import DockerfileError

Form = Literal["exec", "shell"]

DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
# BuildKit's directives; another ``# key=value`` line is a comment and ends the directives.
DIRECTIVES = frozenset({"syntax", "escape", "check"})
ESCAPE_TOKENS = ("\\", "`")
HEREDOC_WORD = re.compile(r"^<<(-?)\s*(\S+)$")
HEREDOC_KEYWORDS = frozenset({"RUN", "COPY", "ADD"})
JSON_KEYWORDS = frozenset({"RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "VOLUME"})
LINE_KEYWORDS = frozenset({"RUN", "CMD", "ENTRYPOINT", "SHELL"})  # shell form: one string
STRING_KEYWORDS = frozenset({"MAINTAINER", "USER", "WORKDIR", "STOPSIGNAL", "ONBUILD"})
LIST_KEYWORDS = frozenset({"FROM", "EXPOSE", "COPY", "ADD", "VOLUME"})  # split on spaces
WORD_KEYWORDS = frozenset({"ARG", "ENV", "LABEL"})  # quote-aware words
KEYWORDS = (
    JSON_KEYWORDS | STRING_KEYWORDS | LIST_KEYWORDS | WORD_KEYWORDS | frozenset({"HEALTHCHECK"})
)
# The flags each instruction takes (Docker refuses any other). ``--mount`` and
# ``--exclude`` may be given more than once.
FLAGS: dict[str, frozenset[str]] = {
    "FROM": frozenset({"platform"}),
    "COPY": frozenset({"from", "chown", "chmod", "link", "parents", "exclude"}),
    "ADD": frozenset(
        {"chown", "chmod", "link", "parents", "exclude", "checksum", "keep-git-dir", "unpack"}
    ),
    "RUN": frozenset({"mount", "network", "security", "device"}),
    "HEALTHCHECK": frozenset({"interval", "timeout", "start-period", "start-interval", "retries"}),
}
REPEATABLE_FLAGS = frozenset({"mount", "exclude", "device"})


@dataclass(frozen=True)
class Flag:
    """``--name=value`` (``value`` None for a bare ``--link``)."""

    name: str
    value: str | None


@dataclass(frozen=True)
class Heredoc:
    """A here-document: ``<<EOF`` … ``EOF``. ``expand``: the terminator was unquoted, so
    the build substitutes variables in ``content``."""

    name: str
    content: str
    expand: bool


@dataclass(frozen=True)
class RawInstruction:
    """One instruction as written: variables not substituted yet."""

    keyword: str  # upper case
    flags: tuple[Flag, ...]
    arguments: tuple[str, ...]
    form: Form
    line: int  # 1-based, where it starts
    end_line: int  # where it ends (continuations and heredocs included)
    original: str  # the logical line, continuations joined
    heredocs: tuple[Heredoc, ...] = ()


def read(
    text: str, *, path: Path | str | None = None
) -> tuple[dict[str, str], list[RawInstruction]]:
    """The parser directives (lower-case names) and the instructions of ``text``."""
    physical = text.split("\n")
    if physical and physical[-1] == "":
        physical.pop()
    physical = [line.removesuffix("\r") for line in physical]
    if physical:
        physical[0] = physical[0].removeprefix("\ufeff")

    directives: dict[str, str] = {}
    escape = "\\"
    continuation = _continuation(escape)
    looking_for_directives = True
    instructions: list[RawInstruction] = []
    index = 0
    while index < len(physical):
        number = index + 1
        stripped = physical[index].lstrip()
        index += 1
        if looking_for_directives:
            match = DIRECTIVE.match(stripped)
            if match and match.group(1).lower() in DIRECTIVES:
                name, value = match.group(1).lower(), match.group(2)
                if name in directives:
                    raise DockerfileError(
                        f"only one {name} parser directive can be used", path=path, line=number
                    )
                directives[name] = value
                if name == "escape":
                    if value not in ESCAPE_TOKENS:
                        raise DockerfileError(
                            f"invalid escape token {value!r}: use \\ or `", path=path, line=number
                        )
                    escape = value
                    continuation = _continuation(escape)
                continue
            looking_for_directives = False
        if stripped.startswith("#"):
            continue
        body, more = _trim(stripped, continuation)
        if not more and not body.strip():
            continue
        end = number
        while more and index < len(physical):
            line = physical[index]
            end = index + 1
            index += 1
            if line.lstrip().startswith("#") or not line.strip():
                continue  # a comment or an empty line inside a continuation is skipped
            part, more = _trim(line, continuation)
            body += part
        instruction = _instruction(body, escape, number, end, path)
        if instruction.keyword in HEREDOC_KEYWORDS and instruction.form == "shell":
            heredocs, index = _heredocs(instruction, physical, index, path)
            if heredocs:
                instruction = RawInstruction(
                    **{**instruction.__dict__, "heredocs": heredocs, "end_line": index}
                )
        instructions.append(instruction)
    if not instructions:
        raise DockerfileError(
            "file with no instructions: start it with FROM <image>", path=path, line=None
        )
    return directives, instructions


def _continuation(escape: str) -> re.Pattern[str]:
    return re.compile(re.escape(escape) + r"[ \t]*$")


def _trim(line: str, continuation: re.Pattern[str]) -> tuple[str, bool]:
    """The line without its continuation character, and whether one was there."""
    match = continuation.search(line)
    return (line[: match.start()], True) if match else (line, False)


def _instruction(
    body: str, escape: str, line: int, end: int, path: Path | str | None
) -> RawInstruction:
    parts = body.strip().split(None, 1)
    keyword = parts[0].upper()
    rest = parts[1] if len(parts) > 1 else ""
    if keyword not in KEYWORDS:
        raise DockerfileError(
            f"unknown instruction {parts[0]!r}: expected one of {', '.join(sorted(KEYWORDS))}",
            path=path,
            line=line,
        )
    words, rest = _flag_words(rest)
    flags = tuple(_flag(keyword, word, path, line) for word in words)
    _check_flags(keyword, flags, path, line)
    rest = rest.strip()
    arguments, form = _arguments(keyword, rest, escape, path, line)
    return RawInstruction(keyword, flags, arguments, form, line, end, body)


def _flag_words(line: str) -> tuple[list[str], str]:
    """The leading ``--`` words (quotes and backslashes resolved) and what follows them."""
    words: list[str] = []
    position = 0
    while True:
        while position < len(line) and line[position].isspace():
            position += 1
        if not line.startswith("--", position):
            return words, line[position:]
        word: list[str] = []
        quote: str | None = None
        while position < len(line):
            char = line[position]
            if quote is None and char.isspace():
                break
            position += 1
            if char == "\\" and position < len(line):
                word.append(line[position])
                position += 1
            elif quote is not None and char == quote:
                quote = None
            elif quote is None and char in "'\"":
                quote = char
            else:
                word.append(char)
        text = "".join(word)
        if text == "--":  # ends the flags
            return words, line[position:]
        words.append(text)


def _flag(keyword: str, word: str, path: Path | str | None, line: int) -> Flag:
    name, equals, value = word[2:].partition("=")
    if not name:
        raise DockerfileError(f"{keyword}: empty flag {word!r}", path=path, line=line)
    return Flag(name.lower(), value if equals else None)


def _check_flags(keyword: str, flags: tuple[Flag, ...], path: Path | str | None, line: int) -> None:
    allowed = FLAGS.get(keyword, frozenset())
    seen: set[str] = set()
    for flag in flags:
        if flag.name not in allowed:
            known = ", ".join(f"--{name}" for name in sorted(allowed)) or "none"
            raise DockerfileError(
                f"{keyword}: unknown flag --{flag.name} (it takes: {known})", path=path, line=line
            )
        if flag.name in seen and flag.name not in REPEATABLE_FLAGS:
            raise DockerfileError(f"{keyword}: --{flag.name} is given twice", path=path, line=line)
        seen.add(flag.name)


def _arguments(
    keyword: str, rest: str, escape: str, path: Path | str | None, line: int
) -> tuple[tuple[str, ...], Form]:
    if keyword == "HEALTHCHECK":
        kind, _, command = rest.partition(" ")
        if not kind:
            return (), "shell"
        arguments, form = _arguments("CMD", command.strip(), escape, path, line)
        return (kind.upper(), *arguments), form
    if keyword in JSON_KEYWORDS and rest.startswith("["):
        try:
            value = json.loads(rest)
        except json.JSONDecodeError:
            value = None  # not JSON: the shell form, as Docker reads it
        if isinstance(value, list):
            if not all(isinstance(item, str) for item in value):
                raise DockerfileError(
                    f"{keyword}: a JSON array must hold strings only", path=path, line=line
                )
            return tuple(value), "exec"
    if not rest:
        return (), "shell"
    if keyword in LINE_KEYWORDS or keyword in STRING_KEYWORDS:
        return (rest,), "shell"
    if keyword in LIST_KEYWORDS:
        return tuple(rest.split()), "shell"
    return tuple(words(rest, escape)), "shell"


def words(text: str, escape: str = "\\") -> list[str]:
    """Split on unquoted whitespace, keeping quotes and escapes (``ARG``, ``ENV``, ``LABEL``:
    they are resolved when the words are expanded)."""
    result: list[str] = []
    word: list[str] = []
    quote: str | None = None
    started = False
    position = 0
    while position < len(text):
        char = text[position]
        position += 1
        if quote is None and char.isspace():
            if started:
                result.append("".join(word))
            word, started = [], False
            continue
        started = True
        if char == escape and quote != "'":
            word.append(char)
            if position < len(text):
                word.append(text[position])
                position += 1
            continue
        if quote is None and char in "'\"":
            quote = char
        elif char == quote:
            quote = None
        word.append(char)
    if started:
        result.append("".join(word))
    return result


def _heredocs(
    instruction: RawInstruction, physical: list[str], index: int, path: Path | str | None
) -> tuple[tuple[Heredoc, ...], int]:
    """The instruction's here-documents, read from ``physical[index:]``; the next index."""
    try:
        tokens = shlex.split(instruction.original, comments=False, posix=True)
    except ValueError:
        tokens = instruction.original.split()
    heredocs = []
    for token in tokens:
        match = HEREDOC_WORD.match(token)
        if not match:
            continue
        strip_tabs, name = match.group(1) == "-", match.group(2)
        quoted = re.search(r"<<-?\s*['\"]" + re.escape(name), instruction.original) is not None
        content: list[str] = []
        while True:
            if index >= len(physical):
                raise DockerfileError(
                    f"{instruction.keyword}: the heredoc <<{name} has no closing {name} line",
                    path=path,
                    line=instruction.line,
                )
            text = physical[index]
            index += 1
            if strip_tabs:
                text = text.lstrip("\t")
            if text == name:
                break
            content.append(text + "\n")
        heredocs.append(Heredoc(name, "".join(content), expand=not quoted))
    return tuple(heredocs), index
