"""Spec errors for people: which file, where, which field, what was wrong, what to do."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a spec file."""

    loc: Loc
    message: str
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based
    hint: str | None = None
    # The name a "no ... named" problem did not find (so a problem about a reference to a
    # part that is itself broken can be told apart: `fargo.spec.salvage`).
    refers_to: str | None = field(default=None, compare=False)

    @property
    def field_path(self) -> str:
        out = ""
        for part in self.loc:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
        return out or "(top level)"

    def render(self, path: Path | str | None, *, label: str | None = None) -> str:
        """``file:line:column: [label: ]field: message (hint)``; no file part without ``path``."""
        where = "" if path is None else str(path)
        if path is not None and self.line is not None:
            where += f":{self.line}:{self.column or 1}"
        parts = [part for part in (where, label, self.field_path, self.message) if part]
        text = ": ".join(parts)
        return f"{text} ({self.hint})" if self.hint else text


class SpecError(Exception):
    """Base of every spec error."""


@dataclass
class SpecFileError(SpecError):
    """The spec file could not be read or parsed (missing, unreadable, not YAML, empty)."""

    path: Path
    reason: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = str(self.path)
        if self.line is not None:
            where += f":{self.line}:{self.column or 1}"
        return f"{where}: {self.reason}"


@dataclass
class SpecInvalid(SpecError):
    """The spec file parsed, but its content is wrong; ``problems`` has every finding."""

    path: Path
    problems: list[Problem] = field(default_factory=list)

    def __str__(self) -> str:
        count = len(self.problems)
        head = f"{self.path}: {count} problem{'s' if count != 1 else ''} in the spec"
        return "\n".join([head, *(f"  {p.render(self.path)}" for p in self.problems)])
