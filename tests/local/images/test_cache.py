"""This machine's cache of image environments: where it is, whom it trusts, what it prunes."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from fargo.local.images import python
from fargo.local.images.cache import (
    CacheError,
    cache_root,
    environments_cache,
    mark_used,
    prune_unused,
    read_private,
    write_private,
)


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("FARGO_CACHE_DIR", str(folder))
    return folder


def test_the_cache_is_made_for_its_owner_alone(cache: Path) -> None:
    assert cache_root() == cache
    folder = environments_cache()
    assert folder == cache / "environments"
    assert folder.stat().st_mode & 0o777 == 0o700 and cache.stat().st_mode & 0o777 == 0o700


def test_a_cache_others_may_write_is_refused_with_what_to_do(cache: Path) -> None:
    cache.mkdir(mode=0o700)
    cache.chmod(0o777)
    with pytest.raises(CacheError, match=r"not yours alone .*mode 777.*FARGO_CACHE_DIR"):
        environments_cache()
    write = cache / "pythons.json"
    write.write_text('{"3.12": "/tmp/planted"}')
    assert read_private("pythons.json") is None  # not trusted, not read


def make_environment(folder: Path, name: str, *, age_days: float) -> Path:
    environment = folder / name
    (environment / "lib").mkdir(parents=True)
    marker = environment / ".complete"
    marker.write_text("{}")
    then = time.time() - age_days * 86400
    os.utime(marker, (then, then))
    return environment


def test_environments_unused_for_a_month_are_pruned_and_used_ones_kept() -> None:
    folder = environments_cache()
    old = make_environment(folder, "old", age_days=45)
    used = make_environment(folder, "used", age_days=45)
    recent = make_environment(folder, "recent", age_days=2)
    mark_used(used)
    assert prune_unused(folder) == [old]
    assert not old.exists() and used.is_dir() and recent.is_dir()


def test_the_interpreter_found_for_a_version_is_remembered_while_it_is_that_version(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    found: list[str] = []
    asked: list[Path] = []
    interpreter = tmp_path / "bin" / "python3"
    interpreter.parent.mkdir()
    interpreter.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    interpreter.chmod(0o755)

    def find(version: str, uv: Path, environment: object) -> Path:
        found.append(version)
        return interpreter

    version_of = python._version_of

    def ask(path: Path) -> str:
        asked.append(path)
        return version_of(path)

    monkeypatch.setattr(python, "_find", find)
    monkeypatch.setattr(python, "_version_of", ask)
    version = "{}.{}".format(*sys.version_info[:2])
    first = python.find_python(version, tmp_path / "uv")
    assert python.find_python(version, tmp_path / "uv") == first
    assert found == [version]  # looked for once, then read from the cache
    assert asked == []  # its file unchanged: not even asked its version
    # the file changed (a reinstall): asked again, and still that version
    interpreter.write_text(f'#!/bin/sh\n# reinstalled\nexec {sys.executable} "$@"\n')
    assert python.find_python(version, tmp_path / "uv") == first
    assert asked == [first] and found == [version]
    write_private(python.PYTHONS, json.dumps({version: "/nonexistent/python"}))  # older form
    assert python.find_python(version, tmp_path / "uv") == first  # gone: looked for again
    assert found == [version, version]
