"""`fargo watch`'s handling of the spec file: a save is applied, and a save made while an
apply runs is applied next (with a real watcher on a real folder; the apply is recorded)."""

from __future__ import annotations

import io
import shutil
import threading
from pathlib import Path

import pytest
from tests.waiting import wait_until

from fargo.local.cli import apply
from fargo.local.cli.watch import Watcher

ROOT = Path(__file__).resolve().parents[2]


def test_a_spec_saved_while_the_last_one_applies_is_applied_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / "fargo.yaml"
    shutil.copyfile(ROOT / "fargo.yaml", spec)
    original = spec.read_text()
    edited = original.replace("desired_count: 1", "desired_count: 2", 1)
    assert edited != original and len(edited) == len(original)  # same size: mtime tells
    applied: list[str] = []

    def apply_spec(state_dir: Path, out: object) -> int:
        applied.append(spec.read_text())
        if len(applied) == 1:
            spec.write_text(original)  # saved again while the edit is being applied
        return 0

    monkeypatch.setattr(apply, "apply_spec", apply_spec)
    stop = threading.Event()
    watcher = Watcher(spec, tmp_path / "state", io.StringIO())
    running = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
    running.start()
    try:
        wait_until(lambda: "watching" in watcher.out.getvalue(), timeout=10)  # type: ignore[attr-defined]
        spec.write_text(edited)
        wait_until(lambda: len(applied) >= 2, timeout=10, what="the second save applied")
        assert applied[:2] == [edited, original]
    finally:
        stop.set()
        running.join(timeout=10)
