"""Task lines on a screen (`fargo.local.logs.render`): a colour per service on a terminal,
plain when piped or when ``NO_COLOR`` is set (https://no-color.org)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import TextIO

import pytest

from fargo.local.logs.render import LinePrinter, use_colour

ESCAPE = "\033["
COLOUR_CODE = re.compile(r"\033\[(\d+)m")


@pytest.fixture
def terminal() -> Iterator[TextIO]:
    """A real terminal: the writing side of a pseudo-terminal."""
    controller, follower = os.openpty()
    with open(follower, "w") as stream:
        try:
            yield stream
        finally:
            os.close(controller)


@pytest.fixture
def piped() -> Iterator[TextIO]:
    """Output into a pipe, as `fargo up | tee up.log` has it."""
    reading, writing = os.pipe()
    with open(writing, "w") as stream:
        try:
            yield stream
        finally:
            os.close(reading)


def colour_of(line: str) -> str:
    """The ANSI colour code the line's prefix is drawn in."""
    found = COLOUR_CODE.match(line)
    assert found is not None, f"no colour at the start of {line!r}"
    return found[1]


def test_piped_output_is_plain(piped: TextIO) -> None:
    assert not use_colour(piped, environ={})


def test_a_terminal_gets_colour(terminal: TextIO) -> None:
    assert use_colour(terminal, environ={})


def test_no_color_makes_a_terminal_plain(terminal: TextIO) -> None:
    assert not use_colour(terminal, environ={"NO_COLOR": "1"})


def test_an_empty_no_color_is_not_set(terminal: TextIO) -> None:
    """no-color.org: only a ``NO_COLOR`` that is present *and not empty* turns colour off."""
    assert use_colour(terminal, environ={"NO_COLOR": ""})


def test_no_color_is_read_from_the_process_environment_by_default(
    terminal: TextIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_colour(terminal)
    monkeypatch.delenv("NO_COLOR")
    assert use_colour(terminal)


def test_each_service_gets_a_colour_of_its_own() -> None:
    printer = LinePrinter(colour=True, timestamps="none")
    web_a = printer.format("web-a", "web-a/0f3c9a1e", None, "GET /a/x")
    web_b = printer.format("web-b", "web-b/7d20b4c8", None, "GET /b/1x")
    assert colour_of(web_a) != colour_of(web_b)


def test_every_task_of_a_service_shares_its_colour() -> None:
    printer = LinePrinter(colour=True, timestamps="none")
    first = printer.format("web-a", "web-a/0f3c9a1e", None, "GET /a/x")
    printer.format("web-b", "web-b/7d20b4c8", None, "GET /b/1x")
    again = printer.format("web-a", "web-a/0f3c9a1e", None, "GET /a/y")
    other_task = printer.format("web-a", "web-a/5e6f7a8b", None, "GET /a/z")
    assert colour_of(first) == colour_of(again) == colour_of(other_task)


def test_only_the_prefix_is_coloured() -> None:
    line = LinePrinter(colour=True, timestamps="none").format(
        "web-a", "web-a/0f3c9a1e", None, "GET /a/x"
    )
    assert line == f"\033[{colour_of(line)}mweb-a/0f3c9a1e\033[0m | GET /a/x"


def test_a_plain_printer_writes_no_escape_codes() -> None:
    printer = LinePrinter(colour=False, timestamps="none")
    lines = [
        printer.format("web-a", "web-a/0f3c9a1e", None, "GET /a/x"),
        printer.format("web-b", "web-b/7d20b4c8", None, "GET /b/1x"),
    ]
    assert lines == ["web-a/0f3c9a1e | GET /a/x", "web-b/7d20b4c8 | GET /b/1x"]
    assert not any(ESCAPE in line for line in lines)
