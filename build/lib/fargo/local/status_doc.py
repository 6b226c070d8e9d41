"""The generated half of ``docs/status.md``: every model of the status schema, field by
field, and the JSON Schema itself — made from `fargo.local.status`, so the document
cannot drift from the models (a test compares them).

    python -m fargo.local.status_doc docs/status.md   # rewrite the generated half in place

Everything above `MARKER` is written by people and kept as it is.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from fargo.local.status import json_schema

MARKER = (
    "<!-- Generated from fargo.local.status by `python -m fargo.local.status_doc "
    "docs/status.md`: change the models, not the text below. -->"
)
REF_PREFIX = "#/$defs/"

Schema = Mapping[str, Any]


class MarkerMissing(ValueError):
    """The document has no line where its generated half starts."""


def render(document: str) -> str:
    """``document`` with everything after `MARKER` generated again."""
    head, found, _ = document.partition(MARKER)
    if not found:
        raise MarkerMissing(
            f"no line {MARKER!r} in the document: add it where the generated part starts"
        )
    return f"{head}{MARKER}\n\n{generated()}"


def generated() -> str:
    schema = json_schema()
    lines = ["## Fields", ""]
    for name, definition in _definitions_in_order(schema):
        lines += [f"### {name}", ""]
        if description := definition.get("description"):
            lines += [_one_line(description), ""]
        if "enum" in definition:
            lines += ["One of: " + ", ".join(f"`{v}`" for v in definition["enum"]) + ".", ""]
            continue
        lines += ["| field | type | description |", "|---|---|---|"]
        required = set(definition.get("required", []))
        for field, prop in definition.get("properties", {}).items():
            kind = _type(prop) + ("" if field in required else " (optional)")
            lines.append(f"| `{field}` | {kind} | {_cell(prop.get('description', ''))} |")
        lines.append("")
    lines += [
        "## JSON Schema",
        "",
        "What `fargo status --json-schema` prints:",
        "",
        "```json",
        json.dumps(schema, indent=2),
        "```",
        "",
    ]
    return "\n".join(lines)


def _definitions_in_order(schema: Schema) -> Iterator[tuple[str, Schema]]:
    """The root, then every definition in the order a reader meets them (breadth first)."""
    definitions: Mapping[str, Schema] = schema.get("$defs", {})
    queue: list[tuple[str, Schema]] = [(str(schema["title"]), schema)]
    seen = {str(schema["title"])}
    while queue:
        name, definition = queue.pop(0)
        yield name, definition
        for ref in _refs(definition.get("properties", {})):
            if ref not in seen:
                seen.add(ref)
                queue.append((ref, definitions[ref]))


def _refs(node: object) -> Iterator[str]:
    if isinstance(node, Mapping):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF_PREFIX):
            yield ref.removeprefix(REF_PREFIX)
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _type(prop: Schema) -> str:
    """A property's type in words: ``list of [TaskSummary](#tasksummary)``, ``string or null``."""
    if "$ref" in prop:
        name = str(prop["$ref"]).removeprefix(REF_PREFIX)
        return f"[{name}](#{name.lower()})"
    if "anyOf" in prop:
        return " or ".join(_type(option) for option in prop["anyOf"])
    if "const" in prop:
        return f"`{json.dumps(prop['const'])}`"
    if "enum" in prop:
        return "one of " + ", ".join(f"`{v}`" for v in prop["enum"])
    kind = prop.get("type")
    if kind == "array":
        return f"list of {_type(prop.get('items', {}))}"
    if kind == "object":
        values = prop.get("additionalProperties")
        return f"map of string to {_type(values)}" if isinstance(values, Mapping) else "object"
    if kind is None:
        return "any"
    fmt = prop.get("format")
    return f"{kind} ({fmt})" if fmt else str(kind)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _cell(text: str) -> str:
    return _one_line(text).replace("|", "\\|")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fargo.local.status_doc")
    parser.add_argument("document", type=Path, help="the Markdown file, e.g. docs/status.md")
    args = parser.parse_args(argv)
    text = args.document.read_text(encoding="utf-8")
    args.document.write_text(render(text), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
