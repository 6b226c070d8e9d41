"""How task log lines look on a screen: ``service/task`` prefix, time, a colour per service.

    printer = LinePrinter(colour=use_colour(sys.stdout), timestamps="short")
    print(printer.format(event.stream.service, event.stream.label, event.timestamp, event.message))

Colour only on a terminal, and never when ``NO_COLOR`` is set (https://no-color.org).
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Literal, TextIO

# ANSI foreground colours that read on dark and light terminals alike.
PALETTE = ("36", "33", "35", "32", "34", "91", "96", "93")
RESET = "\033[0m"
Timestamps = Literal["none", "short", "full"]


def use_colour(stream: TextIO, environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return bool(stream.isatty()) and not env.get("NO_COLOR")


class LinePrinter:
    def __init__(self, *, colour: bool, timestamps: Timestamps = "short", width: int = 0) -> None:
        """``width``: the prefixes' column width to start with (it grows with longer ones)."""
        self.colour = colour
        self.timestamps = timestamps
        self._colours: dict[str, str] = {}
        self.width = width

    def format(self, service: str, label: str, moment: datetime | None, message: str) -> str:
        self.width = max(self.width, len(label))
        prefix = label.ljust(self.width)
        if self.colour:
            code = self._colours.setdefault(service, PALETTE[len(self._colours) % len(PALETTE)])
            prefix = f"\033[{code}m{prefix}{RESET}"
        return f"{prefix} | {self._time(moment)}{message}"

    def _time(self, moment: datetime | None) -> str:
        if self.timestamps == "none":
            return ""
        if moment is None:
            return "-".ljust(12 if self.timestamps == "short" else 27) + " "
        if self.timestamps == "full":
            return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ ")
        return moment.astimezone().strftime("%H:%M:%S.%f")[:12] + " "
