"""This machine's laid-out images: kept whole or not at all, copied out, pruned unused."""

from __future__ import annotations

import os
import time
from pathlib import Path

from fargo.local.images.layouts import Layouts, layout_key


def stages(folder: Path) -> Path:
    (folder / "0" / "app").mkdir(parents=True)
    (folder / "0" / "app" / "main.py").write_text("print('hi')\n")
    (folder / "0" / "app" / "link").symlink_to("main.py")
    return folder


def test_a_kept_layout_is_copied_out_with_its_links(tmp_path: Path) -> None:
    layouts = Layouts(tmp_path / "layouts")
    layouts.directory.mkdir()
    key = layout_key("sha256:abc", Path("/usr/bin/python3.12"))
    layouts.keep(key, stages(tmp_path / "built"))
    assert layouts.copy(key, tmp_path / "copy")
    assert (tmp_path / "copy/0/app/main.py").read_text() == "print('hi')\n"
    assert os.readlink(tmp_path / "copy/0/app/link") == "main.py"
    assert sorted(p.name for p in layouts.directory.iterdir()) == [key]  # no staging left


def test_the_interpreter_is_part_of_the_key() -> None:
    assert layout_key("d", Path("/a/python3.12")) != layout_key("d", Path("/b/python3.12"))
    assert layout_key("d", None) != layout_key("e", None)


def test_a_layout_not_kept_in_full_is_not_copied(tmp_path: Path) -> None:
    layouts = Layouts(tmp_path / "layouts")
    half = layouts.directory / layout_key("d", None)
    stages(half / "stages")  # no completion marker: a build died while keeping it
    assert not layouts.copy(half.name, tmp_path / "copy")
    assert not (tmp_path / "copy").exists()


def test_keeping_into_a_missing_or_full_cache_only_costs_the_next_build(tmp_path: Path) -> None:
    layouts = Layouts(tmp_path / "missing")
    layouts.keep("k", stages(tmp_path / "built"))  # no error: the build itself succeeded
    assert not layouts.copy("k", tmp_path / "copy")


def test_a_layout_unused_for_a_month_is_pruned_when_another_is_kept(tmp_path: Path) -> None:
    layouts = Layouts(tmp_path / "layouts")
    layouts.directory.mkdir()
    layouts.keep("old", stages(tmp_path / "a"))
    layouts.keep("used", stages(tmp_path / "b"))
    month_ago = time.time() - 31 * 86400
    for name in ("old", "used"):
        os.utime(layouts.directory / name / ".complete", (month_ago, month_ago))
    assert layouts.copy("used", tmp_path / "copy")  # marks it used
    layouts.keep("new", stages(tmp_path / "c"))
    assert not (layouts.directory / "old").exists()
    assert layouts.copy("used", tmp_path / "copy-2") and layouts.copy("new", tmp_path / "copy-3")
