"""Docker's path patterns: ``.dockerignore`` files, ``COPY --exclude`` and ``COPY`` sources.

    matcher = PatternMatcher.read(context / ".dockerignore")
    matcher.matches("kit/tests/test_x.py")      # True: excluded from the context

The rules of moby's ``patternmatcher`` (what ``docker build`` and BuildKit use):

- a pattern is a Go ``filepath.Match`` pattern (``*`` and ``?`` never match ``/``,
  ``[a-z]`` classes, ``\\`` escapes) plus ``**``, any number of directories;
- it is anchored at the context root: ``foo`` is ``./foo`` only, not ``a/foo``
  (``**/foo`` is both); a leading ``/`` or ``./`` and a trailing ``/`` change nothing;
- a pattern that matches a directory matches everything under it;
- ``!pattern`` re-includes what an earlier pattern excluded; the last match wins;
- in a file, lines starting with ``#`` are comments and blank lines are skipped.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

# What Go's regexp needs escaped but filepath.Match gives no meaning (moby's shouldEscape).
_REGEX_SPECIAL = set(".+()|{}$")
_WILDCARDS = re.compile(r"[*?\[\\]")


class PatternError(ValueError):
    """A pattern Docker refuses (a lone ``!``, an unclosed ``[``)."""


def clean(pattern: str) -> str:
    """Go's ``filepath.Clean`` on a slash path, without the leading ``/`` (the context root)."""
    cleaned = posixpath.normpath(pattern) if pattern else "."
    cleaned = re.sub(r"^/+", "/", cleaned)
    return cleaned[1:] if len(cleaned) > 1 and cleaned.startswith("/") else cleaned


@dataclass(frozen=True)
class Pattern:
    """One pattern, compiled as moby compiles it."""

    text: str
    exclusion: bool
    regex: re.Pattern[str]

    @classmethod
    def compile(cls, raw: str) -> Pattern:
        text = raw.strip()
        exclusion = text.startswith("!")
        if exclusion:
            text = text[1:].strip()
            if not text:
                raise PatternError('illegal exclusion pattern: "!"')
        text = clean(text)
        return cls(text, exclusion, re.compile(_regex(text), re.DOTALL))

    def match(self, path: str) -> bool:
        return self.regex.match(path) is not None

    def match_or_parent(self, path: str) -> bool:
        """``path`` or one of its directories matches (so a directory covers its files)."""
        if self.match(path):
            return True
        parts = path.split("/")
        return any(self.match("/".join(parts[:i])) for i in range(1, len(parts)))


def _regex(pattern: str) -> str:
    """A Python regex equal to moby's compiled pattern (exact, prefix, suffix or regexp)."""
    out = ["^"]
    index = 0
    while index < len(pattern):
        char = pattern[index]
        index += 1
        if char == "*":
            if index < len(pattern) and pattern[index] == "*":
                index += 1
                slash = index < len(pattern) and pattern[index] == "/"
                index += slash
                if index == len(pattern):
                    out.append(".*")  # a trailing "**": everything below
                elif index == 2 and not _WILDCARDS.search(pattern[index:]):
                    out.append(".*")  # "**foo" with a literal rest: any path ending in "foo"
                else:
                    out.append("(?:.*/)?")  # "**/": any number of directories, even none
            else:
                out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "\\":
            if index < len(pattern):
                out.append(re.escape(pattern[index]))
                index += 1
            else:
                out.append(re.escape("\\"))
        elif char == "[":
            end = pattern.find(
                "]", index + 1 if pattern[index : index + 1] in ("^", "]") else index
            )
            if end < 0:
                raise PatternError(f"{pattern!r}: no closing ] (syntax error in pattern)")
            body = pattern[index:end]
            if body.startswith("^"):
                body = "^" + body[1:].replace("\\", "\\\\")
            else:
                body = body.replace("\\", "\\\\")
            out.append(f"[{body}]")
            index = end + 1
        else:
            out.append("\\" + char if char in _REGEX_SPECIAL else re.escape(char))
    out.append("$")
    return "".join(out)


class PatternMatcher:
    """An ordered list of patterns; the last one matching a path decides."""

    def __init__(self, patterns: list[str]) -> None:
        self.patterns = [Pattern.compile(p) for p in patterns if p.strip()]

    @classmethod
    def read(cls, path: Path) -> PatternMatcher:
        """The patterns of an ignore file (none when there is no file)."""
        if not path.is_file():
            return cls([])
        text = path.read_text(encoding="utf-8").removeprefix("\ufeff")
        lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
        try:
            return cls(lines)
        except PatternError as err:
            raise PatternError(f"{path}: {err}") from None

    def matches(self, path: str) -> bool:
        """Whether ``path`` (slash-separated, relative) is matched: excluded by an ignore
        file, or left out by ``--exclude``."""
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue  # only a re-inclusion can change a match, and the reverse
            if pattern.match_or_parent(path):
                matched = not pattern.exclusion
        return matched
