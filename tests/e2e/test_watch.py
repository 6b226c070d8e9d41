"""``fargo watch``: an edit under an image's build context rolls the services of that image
under load without a failed request; what the Dockerfile does not read changes nothing."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.e2e.conftest import ROOT, Twin, start_twin, under_load
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

APP = Path("services") / "backend_private" / "app.py"
BYO_SPEC = Path(__file__).with_name("byo.yaml")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the reference project, for the tests to edit."""
    root = tmp_path_factory.mktemp("watched")
    shutil.copy(ROOT / "fargo.yaml", root / "fargo.yaml")
    shutil.copytree(
        ROOT / "services", root / "services", ignore=shutil.ignore_patterns("__pycache__")
    )
    return root


@pytest.fixture(scope="module")
def twin(project: Path) -> Iterator[Twin]:
    yield from start_twin(project / "fargo.yaml", project / ".fargo")


@pytest.fixture
def watching(twin: Twin) -> Iterator[list[str]]:
    """``fargo watch`` running on the twin; the lines it has printed so far."""
    with watcher(twin) as lines:
        yield lines


@contextlib.contextmanager
def watcher(twin: Twin) -> Iterator[list[str]]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fargo.cli",
            "watch",
            "-f",
            str(twin.spec),
            "--state-dir",
            str(twin.state_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")))  # type: ignore[union-attr]
    reader.start()
    try:
        wait_until(
            lambda: any("watching" in line for line in lines), timeout=20, what="the watcher"
        )
        yield lines
    finally:
        process.terminate()
        process.wait(timeout=10)
        reader.join(timeout=5)


def test_an_edit_rolls_both_services_of_the_image_under_load_without_a_failed_request(
    twin: Twin, project: Path, watching: list[str]
) -> None:
    before = {t.id for t in twin.service("backend-private-with-alb").tasks}
    with under_load(twin, "/api/private-with-alb") as statuses:
        wait_until(lambda: statuses.total() >= 10, timeout=30, what="the load running")
        edited = time.monotonic()
        with (project / APP).open("a") as app:
            app.write(f"\n# edited by {__name__} at {time.time()}\n")
        wait_until(
            lambda: sum("revision 2 completed" in line for line in watching) == 2,
            timeout=60,
            what="both services rolled",
        )
        seconds = time.monotonic() - edited
        settled = statuses.total()
        wait_until(lambda: statuses.total() >= settled + 10, timeout=30, what="more load")
    after = {t.id for t in twin.service("backend-private-with-alb").tasks}
    assert len(after) == 2 and not after & before
    assert {t.id for t in twin.service("backend-private").tasks}.isdisjoint(before)
    assert set(statuses) == {200}, statuses
    assert any("image backend-private changed" in line for line in watching), watching
    print(f"edit -> both services rolled: {seconds:.1f} s")


def test_a_file_the_dockerfile_does_not_read_changes_nothing(
    twin: Twin, project: Path, watching: list[str]
) -> None:
    revision = twin.service("backend-public").revision
    notes = project / "services" / "notes.txt"
    notes.write_text("not in any image")  # no Dockerfile COPYs it
    cache = project / "services" / "backend_public" / "__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / "app.cpython-311.pyc").write_bytes(b"left out by .dockerignore")
    time.sleep(1.5)  # several debounce rounds: nothing may come of it
    assert not any("changed" in line for line in watching), watching
    assert twin.service("backend-public").revision == revision
    os.remove(notes)


def test_an_edit_of_the_spec_is_applied_as_a_diff(
    twin: Twin, project: Path, watching: list[str]
) -> None:
    spec = project / "fargo.yaml"
    text = spec.read_text()
    before = {t.id for t in twin.service("backend-private").tasks}
    frontend = twin.service("frontend")
    assert frontend.desired == 1
    spec.write_text(
        text.replace(
            "    desired_count: 1\n    target_groups: [frontend]",
            "    desired_count: 2\n    target_groups: [frontend]",
            1,
        )
    )
    try:
        wait_until(
            lambda: twin.service("frontend").healthy == 2, timeout=60, what="frontend scaled"
        )
        wait_until(
            lambda: any("scaled" in line or "desired" in line for line in watching), timeout=10
        )
    finally:
        spec.write_text(text)
    assert any("fargo.yaml changed: applying it" in line for line in watching), watching
    assert {t.id for t in twin.service("backend-private").tasks} == before  # untouched
    wait_until(lambda: twin.service("frontend").desired == 1, timeout=60, what="scaled back")


def test_a_users_own_flask_service_rolls_on_an_edit_under_load(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The Flask service of tests/e2e/byo (its own requirements, built from its Dockerfile),
    two tasks behind a rule: an edit of a file its image COPYs rolls both, no request fails."""
    root = tmp_path_factory.mktemp("byo-watched")
    shutil.copy(BYO_SPEC, root / "byo.yaml")
    shutil.copytree(BYO_SPEC.with_name("byo"), root / "byo")
    with contextlib.contextmanager(start_twin)(root / "byo.yaml", root / ".fargo") as twin:
        before = {t.id for t in twin.service("flask").tasks}
        with (
            watcher(twin) as lines,
            under_load(twin, "/flask/whoami", load_balancer="web", scheme="http") as statuses,
        ):
            wait_until(lambda: statuses.total() >= 10, timeout=30, what="the load running")
            (root / "byo" / "flask" / "greeting.txt").write_text("hello again from flask\n")
            wait_until(
                lambda: any("flask: revision 2 completed" in line for line in lines),
                timeout=90,
                what="the flask service rolled",
            )
            settled = statuses.total()
            wait_until(lambda: statuses.total() >= settled + 10, timeout=30, what="more load")
        assert set(statuses) == {200}, statuses
        after = {t.id for t in twin.service("flask").tasks}
        assert len(after) == 2 and not after & before
        url = twin.url("web", "http") + "/flask/whoami"
        assert httpx.get(url, timeout=10).json()["greeting"] == "hello again from flask"
