"""Help text shared by every ``fargo`` command: the examples at the end of ``--help``."""

from __future__ import annotations

import argparse
from typing import Any

EXAMPLES = "examples:\n"


class ExamplesFormatter(argparse.HelpFormatter):
    """Wraps the description as argparse does; keeps the examples' lines as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith(EXAMPLES):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def examples(*lines: str) -> dict[str, Any]:
    """``add_parser`` keyword arguments that end the command's help with ``lines``."""
    return {
        "epilog": EXAMPLES + "\n".join(f"  {line}" for line in lines),
        "formatter_class": ExamplesFormatter,
    }
