"""YAML syntax errors in plain words, at the line of the mistake.

ruamel.yaml reports what its parser expected ("expected <block end>, but found
'<scalar>'") where it noticed, which is often the line after the mistake. `explain`
turns the common mistakes into what a person fixes: a tab, an indentation, a key
without its ``:``, a quote or bracket never closed, a key given twice.

A quote left open is the hardest: YAML lets a quoted value run on over lines, so the
value swallows the lines after it up to the next quote, and the parser only fails
there, lines later, with an error about whatever follows. ruamel's own scanner finds
that value (`_runaway_quote`): a quoted value spanning lines whose closing quote is
followed by text no value may be.

    try:
        YAML(typ="rt").load(text)
    except MarkedYAMLError as err:
        message, line, column = explain(err, text)   # 1-based line and column
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, StreamMark
from ruamel.yaml.tokens import (
    BlockEndToken,
    BlockMappingStartToken,
    BlockSequenceStartToken,
    FlowMappingEndToken,
    FlowMappingStartToken,
    FlowSequenceEndToken,
    FlowSequenceStartToken,
    ScalarToken,
    Token,
)

# A YAML spec never needs this many levels; ruamel's composer recurses once per level,
# so a file nested hundreds deep would exhaust Python's stack.
MAX_NESTING = 64

_KEY_WITHOUT_SPACE = re.compile(r"^\s*(-\s+)?[A-Za-z0-9_.-]+:[^\s/]")
_DASH_WITHOUT_SPACE = re.compile(r"^\s*-[A-Za-z0-9_]")
_DUPLICATE = re.compile(r'found duplicate key "(?P<key>[^"]*)"')
_ALIAS = re.compile(r"found undefined alias '(?P<name>[^']*)'")
_QUOTES = ("'", '"')
# What may follow a value's closing quote on its line: nothing, a comment, the ':' of a
# key, or the ',', ']' or '}' of a flow collection.
_AFTER_A_VALUE = ("#", ":", ",", "]", "}")
_CLOSING = {"[": "]", "{": "}"}


def explain(err: MarkedYAMLError, text: str) -> tuple[str, int | None, int | None]:
    """What is wrong, in plain words, and where (1-based line, column; None: unknown)."""
    lines = text.splitlines()
    problem = str(err.problem or "")
    context = str(err.context or "")
    mark = err.problem_mark
    opened = err.context_mark
    line = mark.line + 1 if mark is not None else None
    column = mark.column + 1 if mark is not None else None

    if "'\\t'" in problem:
        return "a tab character: YAML indents with spaces only; use spaces", line, column
    if "escape" in problem and "double-quoted" in context:
        return (
            "a '\\' inside \"...\" starts an escape, and this one is not a valid escape; "
            "write '\\\\' for a backslash, or quote the value with ' instead",
            line,
            column,
        )
    if "quoted scalar" in context and opened is not None:
        quote = _char(lines, opened.line, opened.column) or "quote"
        return (
            f"the {quote} opened here is never closed; close the string with {quote}",
            opened.line + 1,
            opened.column + 1,
        )
    runaway = _runaway_quote(text, mark) if mark is not None else None
    if runaway is not None and mark is not None:
        return _quote_runs_on(runaway, text, mark)
    if context.startswith("while parsing a flow") and opened is not None:
        return _unclosed_bracket(text, opened, mark)
    duplicate = _DUPLICATE.search(problem)
    if duplicate is not None:
        first = f" (first at line {opened.line + 1})" if opened is not None else ""
        return (
            f"key {duplicate['key']!r} is given twice in one mapping{first}; keep one",
            line,
            column,
        )
    alias = _ALIAS.search(problem)
    if alias is not None:
        name = alias["name"]
        return (
            f"'*{name}' refers to an anchor '&{name}' defined nowhere; quote the value if "
            "'*' is meant literally",
            line,
            column,
        )
    if "simple key" in context and opened is not None:
        return _key_without_colon(lines, opened.line)
    if problem.startswith("mapping values are not allowed") and mark is not None:
        return _stray_colon(lines, mark.line, mark.column)
    if problem.startswith("expected <block end>") and mark is not None:
        return _bad_indentation(lines, mark.line, mark.column)
    return f"not valid YAML: {problem or context}", line, column


def _runaway_quote(text: str, stop: StreamMark) -> ScalarToken | None:
    """The first quoted value opened on a line before ``stop`` (where the parser failed) that
    runs on past its line and whose closing quote is followed by text no value may be:
    a quote left open that swallowed the lines after it up to the next quote."""
    for token in _tokens(text):
        if token.start_mark.line >= stop.line:
            return None
        if (
            isinstance(token, ScalarToken)
            and token.style in _QUOTES
            and token.end_mark.line > token.start_mark.line
            and not _value_may_end(text, token.end_mark)
        ):
            return token
    return None


def _value_may_end(text: str, mark: StreamMark) -> bool:
    rest = _rest_of_line(text, mark.index).lstrip(" \t")
    return rest == "" or rest.startswith(_AFTER_A_VALUE)


def _quote_runs_on(token: ScalarToken, text: str, stop: StreamMark) -> tuple[str, int, int]:
    quote = token.style
    start = token.start_mark
    return (
        f"the {quote} opened here is not closed on its line; a quoted value may run on over "
        f"lines, so YAML read on and only failed at {_where(text, stop)}; close it with "
        f"{quote} on this line",
        start.line + 1,
        start.column + 1,
    )


def _unclosed_bracket(
    text: str, opened: StreamMark, stop: StreamMark | None
) -> tuple[str, int | None, int | None]:
    """A '[' or '{' not closed. ruamel names the collection it was parsing, or only the
    spot where a value was due: at the end of the file, name the outermost bracket still
    open (and how many more are); elsewhere the one ruamel names, else the innermost."""
    at_end = stop is None or _at_end(text, stop)
    unclosed = _open_brackets(text, stop) if stop is not None else []
    lines = text.splitlines()
    if at_end and unclosed:
        first, others = unclosed[0].start_mark, len(unclosed) - 1
    elif _char(lines, opened.line, opened.column) in _CLOSING or not unclosed:
        first, others = opened, 0
    else:
        first, others = unclosed[-1].start_mark, 0
    bracket = _char(lines, first.line, first.column) or ""
    if bracket not in _CLOSING:
        return (
            "a '[' or '{' opened before here is not closed; close it with its ']' or '}'",
            stop.line + 1 if stop is not None else None,
            stop.column + 1 if stop is not None else None,
        )
    if at_end or stop is None:
        before = "the end of the file"
    elif stop.line == first.line:
        before = f"column {stop.column + 1}"
    else:
        before = f"line {stop.line + 1}"
    if others:
        reason = (
            f"the {bracket!r} opened here and the {others} opened after it are not closed "
            f"before {before}; close each with its ']' or '}}'"
        )
    else:
        reason = (
            f"the {bracket!r} opened here is not closed before {before}; "
            f"close it with {_CLOSING[bracket]!r}"
        )
    return reason, first.line + 1, first.column + 1


def _open_brackets(text: str, stop: StreamMark) -> list[Token]:
    """The '[' and '{' opened before ``stop`` and not closed there, outermost first."""
    stack: list[Token] = []
    for token in _tokens(text):
        if _position(token.start_mark) >= _position(stop):
            break
        if isinstance(token, (FlowMappingStartToken, FlowSequenceStartToken)):
            stack.append(token)
        elif isinstance(token, (FlowMappingEndToken, FlowSequenceEndToken)) and stack:
            stack.pop()
    return stack


def _tokens(text: str) -> Iterator[Token]:
    """ruamel's tokens for ``text``, up to its first syntax error (which ends them)."""
    try:
        yield from YAML(typ="rt").scan(text)
    except MarkedYAMLError:
        return


def _where(text: str, mark: StreamMark) -> str:
    return "the end of the file" if _at_end(text, mark) else f"line {mark.line + 1}"


def _at_end(text: str, mark: StreamMark) -> bool:
    return not text[mark.index :].strip()


def _rest_of_line(text: str, index: int) -> str:
    return text[index:].splitlines()[0] if text[index:] else ""


def _position(mark: StreamMark) -> tuple[int, int]:
    return mark.line, mark.column


def _stray_colon(lines: list[str], row: int, col: int) -> tuple[str, int, int]:
    """A ': ' where ruamel was inside a plain value: the line before lacks its ':' (or its
    space after ':'), this line is indented too far, or a value holds ': ' unquoted."""
    here = lines[row] if row < len(lines) else ""
    before = _previous_content_line(lines, row)
    if before is not None and not here[:col].lstrip().startswith("-"):
        previous = lines[before]
        stripped = previous.strip()
        if _DASH_WITHOUT_SPACE.match(previous):
            return (
                f"{stripped!r}: a list item needs a space after its '-' ('- key: value')",
                before + 1,
                _indent(previous) + 2,
            )
        if _KEY_WITHOUT_SPACE.match(previous) or (
            ":" not in stripped and not stripped.startswith("-")
        ):
            return _key_without_colon(lines, before)
        if _indent(here) > _indent(previous):
            return (
                f"this line is indented {_indent(here)} spaces, deeper than the line before "
                f"({_indent(previous)}) though that line's value is already given; align it "
                "with its sibling keys",
                row + 1,
                1,
            )
    return (
        "a value holds ': ', which YAML reads as a new key; quote the value (key: \"a: b\")",
        row + 1,
        col + 1,
    )


def _key_without_colon(lines: list[str], row: int) -> tuple[str, int, int]:
    """Line ``row`` holds a key whose ':' is missing, or not followed by a space."""
    text = lines[row] if row < len(lines) else ""
    stripped = text.strip()
    if _KEY_WITHOUT_SPACE.match(text):
        return (
            f"{stripped!r}: a ':' after a key needs a space after it ('key: value')",
            row + 1,
            text.index(":") + 2,
        )
    return (
        f"{stripped!r} has no ':' after its key; write 'key: value'",
        row + 1,
        _indent(text) + 1,
    )


def _bad_indentation(lines: list[str], row: int, col: int) -> tuple[str, int, int]:
    here = lines[row] if row < len(lines) else ""
    if here.strip().startswith("-"):
        return (
            "a list item ('- ...') where a key belongs: indent it under a key that takes "
            "a list, or write it as 'key: value'",
            row + 1,
            col + 1,
        )
    return (
        f"this line is indented {_indent(here)} spaces, which matches no level above; "
        "align it with its sibling keys",
        row + 1,
        col + 1,
    )


def _previous_content_line(lines: list[str], row: int) -> int | None:
    for index in range(row - 1, -1, -1):
        stripped = lines[index].strip()
        if stripped and not stripped.startswith("#"):
            return index
    return None


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _char(lines: list[str], row: int, col: int) -> str | None:
    if row < len(lines) and col < len(lines[row]):
        return lines[row][col]
    return None


def nesting_too_deep(text: str) -> tuple[int, int] | None:
    """Where ``text``'s brackets or indentation first nest deeper than `MAX_NESTING`
    (1-based line and column), found with ruamel's scanner (which does not recurse)."""
    opening = (
        BlockMappingStartToken,
        BlockSequenceStartToken,
        FlowMappingStartToken,
        FlowSequenceStartToken,
    )
    closing = (BlockEndToken, FlowMappingEndToken, FlowSequenceEndToken)
    depth = 0
    for token in _tokens(text):
        if isinstance(token, opening):
            depth += 1
            if depth > MAX_NESTING:
                mark = token.start_mark
                return mark.line + 1, mark.column + 1
        elif isinstance(token, closing):
            depth -= 1
    return None
