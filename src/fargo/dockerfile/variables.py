"""Docker's processing of one word of an instruction: variables substituted, quotes and
escapes resolved, as BuildKit's shell lexer does for ``COPY``, ``ENV``, ``WORKDIR``, …

    expand("${APP:-web}/src", lookup)      # "web/src" when APP is unset or empty

``lookup(name)`` returns the value, or None when the variable is unset (it may raise
`UnresolvedVariable` when only the build knows the value). Supported: ``$X``, ``${X}``,
``${X:-default}``, ``${X-default}``, ``${X:+alternative}``, ``${X+alternative}``,
``${X:?message}``, ``${X?message}``; the default words are expanded too. Single quotes
keep everything literal; in double quotes, variables are substituted. The pattern forms
(``${X#…}``, ``${X%…}``, ``${X/…}``) are not: `UnsupportedExpansion`.
"""

from __future__ import annotations

from collections.abc import Callable

Lookup = Callable[[str], str | None]


class ExpansionError(ValueError):
    """A word Docker would refuse: ``${X:?…}`` with X unset, an unclosed quote or brace."""


class UnsupportedExpansion(ExpansionError):
    """A form Docker substitutes but this module does not (``${X#…}``, ``${X%…}``, …)."""


def expand(word: str, lookup: Lookup, *, escape: str = "\\") -> str:
    """``word`` as the build sees it."""
    lexer = _Lexer(word, lookup, escape)
    result = lexer.word(stop="")
    if lexer.position < len(word):  # pragma: no cover - only a stop character ends early
        raise ExpansionError(f"unexpected {word[lexer.position]!r} in {word!r}")
    return result


def is_name_char(char: str) -> bool:
    return char.isalnum() or char == "_"


class _Lexer:
    def __init__(self, text: str, lookup: Lookup, escape: str) -> None:
        self.text = text
        self.lookup = lookup
        self.escape = escape
        self.position = 0

    def _next(self) -> str:
        char = self.text[self.position]
        self.position += 1
        return char

    def _more(self) -> bool:
        return self.position < len(self.text)

    def word(self, stop: str) -> str:
        out: list[str] = []
        while self._more():
            char = self.text[self.position]
            if char in stop and stop:
                break
            self.position += 1
            if char == self.escape:
                out.append(self._next() if self._more() else char)
            elif char == "'":
                out.append(self._single_quoted())
            elif char == '"':
                out.append(self._double_quoted())
            elif char == "$":
                out.append(self._dollar())
            else:
                out.append(char)
        return "".join(out)

    def _single_quoted(self) -> str:
        end = self.text.find("'", self.position)
        if end < 0:
            raise ExpansionError(f"no closing single quote in {self.text!r}")
        value = self.text[self.position : end]
        self.position = end + 1
        return value

    def _double_quoted(self) -> str:
        out: list[str] = []
        while True:
            if not self._more():
                raise ExpansionError(f"no closing double quote in {self.text!r}")
            char = self._next()
            if char == '"':
                return "".join(out)
            if char == self.escape and self._more():
                following = self._next()
                # In double quotes only a quote, a dollar and the escape itself are escaped.
                out.append(following if following in ('"', "$", self.escape) else char + following)
            elif char == "$":
                out.append(self._dollar())
            else:
                out.append(char)

    def _name(self) -> str:
        start = self.position
        while self._more() and is_name_char(self.text[self.position]):
            self.position += 1
        return self.text[start : self.position]

    def _dollar(self) -> str:
        if not self._more():
            return "$"
        if self.text[self.position] != "{":
            name = self._name()
            return (self.lookup(name) or "") if name else "$"
        self.position += 1
        name = self._name()
        if not name or not self._more():
            raise ExpansionError(f"bad substitution in {self.text!r}")
        char = self._next()
        if char == "}":
            return self.lookup(name) or ""
        operator = char
        if char == ":":
            operator += self._next() if self._more() else ""
        if operator not in (":-", "-", ":+", "+", ":?", "?"):
            raise UnsupportedExpansion(
                f"${{{name}{operator}…}} in {self.text!r}: only the forms $X, ${{X}}, "
                "${X:-default}, ${X:+alternative} and ${X:?message} are supported here"
            )
        word = self.word(stop="}")
        if not self._more():
            raise ExpansionError(f"no closing }} in {self.text!r}")
        self.position += 1
        value = self.lookup(name)
        is_set = value is not None
        not_empty = bool(value)
        present = not_empty if operator.startswith(":") else is_set
        if operator.endswith("-"):
            return value if present and value is not None else word
        if operator.endswith("+"):
            return word if present else ""
        if not present:
            raise ExpansionError(f"{name}: {word or 'is not set'}")
        return value or ""
