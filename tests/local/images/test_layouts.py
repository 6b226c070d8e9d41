"""This machine's laid-out images: kept whole or not at all, copied out, pruned unused,
never blocked by what a killed build or prune left."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from tests.full_disk import small_tmpfs

from fargo.local.images.builder import ImageBuilder
from fargo.local.images.layouts import Layouts, layout_key


def stages(folder: Path) -> Path:
    (folder / "0" / "app").mkdir(parents=True)
    (folder / "0" / "app" / "main.py").write_text("print('hi')\n")
    (folder / "0" / "app" / "link").symlink_to("main.py")
    return folder


@pytest.fixture
def layouts(tmp_path: Path) -> Layouts:
    directory = tmp_path / "layouts"
    directory.mkdir(mode=0o700)
    return Layouts(directory)


def test_a_kept_layout_is_copied_out_with_its_links(tmp_path: Path, layouts: Layouts) -> None:
    key = layout_key("sha256:abc", "/usr/bin/python3.12:1:2:3:4")
    layouts.keep(key, stages(tmp_path / "built"))
    assert layouts.copy(key, tmp_path / "copy")
    assert (tmp_path / "copy/0/app/main.py").read_text() == "print('hi')\n"
    assert os.readlink(tmp_path / "copy/0/app/link") == "main.py"
    assert not list(layouts.directory.glob(".*"))  # no staging copy left


def test_the_compiling_interpreter_is_part_of_the_key() -> None:
    assert layout_key("d", "/a/python3.12:1") != layout_key("d", "/a/python3.12:2")
    assert layout_key("d", None) != layout_key("e", None)


def test_a_layout_not_kept_in_full_is_not_copied_and_is_kept_again(
    tmp_path: Path, layouts: Layouts
) -> None:
    """A prune or a build killed half-way leaves a layout without its marker: it is not
    copied, and the next build keeps a whole one in its place."""
    half = layouts.directory / layout_key("d", None)
    stages(half / "stages")
    assert not layouts.copy(half.name, tmp_path / "copy")
    assert not (tmp_path / "copy").exists()
    layouts.keep(half.name, stages(tmp_path / "built"))
    assert layouts.copy(half.name, tmp_path / "copy")


def test_a_copy_a_killed_build_left_is_removed_after_an_hour(
    tmp_path: Path, layouts: Layouts
) -> None:
    old, recent = layouts.directory / ".k1.abc", layouts.directory / ".k2.def"
    for left in (old, recent):
        stages(left / "stages")
    hour_ago = time.time() - 3700
    os.utime(old, (hour_ago, hour_ago))
    layouts.keep("k3", stages(tmp_path / "built"))
    assert not old.exists() and recent.exists()  # the recent one may be a build's, now


def test_a_layout_unused_for_a_month_is_pruned_when_another_is_kept(
    tmp_path: Path, layouts: Layouts
) -> None:
    layouts.keep("old", stages(tmp_path / "a"))
    layouts.keep("used", stages(tmp_path / "b"))
    month_ago = time.time() - 31 * 86400
    for name in ("old", "used"):
        os.utime(layouts.directory / name / ".complete", (month_ago, month_ago))
    assert layouts.copy("used", tmp_path / "copy")  # marks it used
    layouts.keep("new", stages(tmp_path / "c"))
    assert not (layouts.directory / "old").exists()
    assert layouts.copy("used", tmp_path / "copy-2") and layouts.copy("new", tmp_path / "copy-3")


def test_a_full_disk_costs_the_next_build_its_time_not_this_one(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "disk", size="1m") as disk:
        layouts = Layouts(disk.path)
        disk.fill()
        layouts.keep("k", stages(tmp_path / "built"))  # no error: the build itself succeeded
        assert not layouts.copy("k", tmp_path / "copy")
        assert not list(disk.path.glob(".k.*"))  # its partial copy removed


def test_an_untrusted_cache_lays_an_image_out_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The layouts only save time: a cache folder others may write is not used, and an
    image without a Python environment (FROM scratch) still builds."""
    context = tmp_path / "context"
    context.mkdir()
    (context / "app.sh").write_text("echo hi\n")
    (context / "Dockerfile").write_text('FROM scratch\nCOPY app.sh /app/\nCMD ["sh"]\n')
    cache = tmp_path / "cache"
    (cache / "layouts").mkdir(parents=True)
    cache.chmod(0o777)
    built = ImageBuilder(tmp_path / "registry", cache / "environments").build(
        "web", context, context / "Dockerfile"
    )
    assert (built.root / "app/app.sh").is_file()
    assert not list((cache / "layouts").iterdir())
