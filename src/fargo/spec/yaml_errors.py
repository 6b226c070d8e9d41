"""YAML syntax errors in plain words, at the line of the mistake.

ruamel.yaml reports what its parser expected ("expected <block end>, but found
'<scalar>'") where it noticed, which is often the line after the mistake. `explain`
turns the common mistakes into what a person fixes: a tab, an indentation, a key
without its ``:``, a quote or bracket never closed, a key given twice.

    try:
        YAML(typ="rt").load(text)
    except MarkedYAMLError as err:
        message, line, column = explain(err, text)   # 1-based line and column
"""

from __future__ import annotations

import re

from ruamel.yaml.error import MarkedYAMLError

# A YAML spec never needs this many levels; ruamel's composer recurses once per level,
# so a file nested hundreds deep would exhaust Python's stack.
MAX_NESTING = 64

_KEY_WITHOUT_SPACE = re.compile(r"^\s*(-\s+)?[A-Za-z0-9_.-]+:[^\s/]")
_DASH_WITHOUT_SPACE = re.compile(r"^\s*-[A-Za-z0-9_]")
_DUPLICATE = re.compile(r'found duplicate key "(?P<key>[^"]*)"')
_ALIAS = re.compile(r"found undefined alias '(?P<name>[^']*)'")


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
    if "quoted scalar" in context and opened is not None:
        quote = _char(lines, opened.line, opened.column) or "quote"
        return (
            f"the {quote} opened here is never closed; close the string with {quote}",
            opened.line + 1,
            opened.column + 1,
        )
    if context.startswith("while parsing a flow") and opened is not None:
        bracket = _char(lines, opened.line, opened.column) or "bracket"
        closing = {"[": "]", "{": "}"}.get(bracket, "the bracket")
        return (
            f"the {bracket!r} opened here is not closed"
            + (f" before line {line}" if line is not None else "")
            + f"; close it with {closing!r}",
            opened.line + 1,
            opened.column + 1,
        )
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
    from ruamel.yaml import YAML
    from ruamel.yaml.tokens import (
        BlockEndToken,
        BlockMappingStartToken,
        BlockSequenceStartToken,
        FlowMappingEndToken,
        FlowMappingStartToken,
        FlowSequenceEndToken,
        FlowSequenceStartToken,
    )

    opening = (
        BlockMappingStartToken,
        BlockSequenceStartToken,
        FlowMappingStartToken,
        FlowSequenceStartToken,
    )
    closing = (BlockEndToken, FlowMappingEndToken, FlowSequenceEndToken)
    depth = 0
    try:
        for token in YAML(typ="rt").scan(text):
            if isinstance(token, opening):
                depth += 1
                if depth > MAX_NESTING:
                    mark = token.start_mark
                    return mark.line + 1, mark.column + 1
            elif isinstance(token, closing):
                depth -= 1
    except MarkedYAMLError:
        return None
    return None
