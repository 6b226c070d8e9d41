"""``fargo watch`` and ``fargo up --watch``: an edit under an image's build context rolls the
services of that image under load without a failed request; what the Dockerfile does not
read changes nothing."""

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
from tests.e2e.conftest import (
    ROOT,
    Twin,
    all_gone,
    make_twin,
    start_twin,
    stop_in_foreground,
    under_load,
)
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


def byo_project(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A copy of tests/e2e/byo.yaml and its build contexts, for a test to edit."""
    root = tmp_path_factory.mktemp(name)
    shutil.copy(BYO_SPEC, root / "byo.yaml")
    shutil.copytree(BYO_SPEC.with_name("byo"), root / "byo")
    return root


@pytest.fixture(scope="module")
def twin(project: Path) -> Iterator[Twin]:
    yield from start_twin(project / "fargo.yaml", project / ".fargo")


@pytest.fixture
def watching(twin: Twin) -> Iterator[list[str]]:
    """``fargo watch`` running on the twin; the lines it has printed so far."""
    with watcher(twin) as lines:
        yield lines


def read_all(process: subprocess.Popen[str]) -> tuple[list[str], threading.Thread]:
    """``process``'s output lines as they come, read until it ends by the thread given."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")))  # type: ignore[union-attr]
    reader.start()
    return lines, reader


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
    lines, reader = read_all(process)
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
    root = byo_project(tmp_path_factory, "byo-watched")
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


@contextlib.contextmanager
def up_watching(twin: Twin) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """``fargo up --watch`` in the foreground, once its watcher watches: the process and
    its output so far. The output is read all along (the tasks' lines stream through it,
    and a full pipe would stall the twin); Ctrl-C at the end."""
    process = subprocess.Popen(
        [sys.executable, "-m", "fargo.cli", "up", "--watch", *twin.up_args()],
        cwd=twin.spec.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines, reader = read_all(process)
    try:
        wait_until(
            lambda: (
                any(" watch: watching " in line for line in lines) or process.poll() is not None
            ),
            timeout=120,
            what="`fargo up --watch` ready and watching",
        )
        assert process.poll() is None, "".join(lines)
        yield process, lines
    finally:
        stop_in_foreground(twin, process)
        reader.join(timeout=10)


def test_up_watch_rolls_a_users_own_fastapi_service_under_load_and_ctrl_c_stops_it(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """``fargo up --watch`` in the foreground on tests/e2e/byo: an edit of the FastAPI
    service's main.py (2 tasks behind a rule) rolls it; two new tasks, balanced, serve the
    edited answer, and no request fails under load. Ctrl-C then stops everything."""
    root = byo_project(tmp_path_factory, "byo-up-watch")
    twin = make_twin(root / "byo.yaml", root / ".fargo")
    main = root / "byo" / "fastapi" / "main.py"
    source = main.read_text()
    field = '"cwd": os.getcwd(),'
    assert field in source, "tests/e2e/byo/fastapi/main.py no longer has the line edited here"
    with up_watching(twin) as (process, lines):
        started = twin.processes()
        before = {t.id for t in twin.service("fastapi").tasks}
        url = twin.url("web", "http") + "/fastapi/whoami"
        assert "edited" not in httpx.get(url, timeout=10).json()
        answered_edited: set[str] = set()

        def both_new_tasks_answer_edited() -> bool:
            answer = httpx.get(url, timeout=10)
            assert answer.status_code == 200, f"a failed request: {answer.status_code}"
            whoami = answer.json()
            if whoami.get("edited") == "by fargo up --watch":
                answered_edited.add(whoami["task"])
            return len(answered_edited) == 2

        with under_load(twin, "/fastapi/whoami", load_balancer="web", scheme="http") as statuses:
            wait_until(lambda: statuses.total() >= 10, timeout=30, what="the load running")
            edited = time.monotonic()
            main.write_text(
                source.replace(field, f'{field}\n        "edited": "by fargo up --watch",')
            )
            wait_until(both_new_tasks_answer_edited, timeout=90, what="two tasks answer edited")
            seconds = time.monotonic() - edited
            wait_until(
                lambda: any("fastapi: revision 2 completed" in line for line in lines),
                timeout=60,
                what="the fastapi service rolled",
            )
            settled = statuses.total()
            wait_until(lambda: statuses.total() >= settled + 10, timeout=30, what="more load")
        after = {t.id for t in twin.service("fastapi").tasks}
        said = [line for line in lines if " watch: " in line]
        assert any("image fastapi changed: rolling out fastapi" in line for line in said), said
    assert process.returncode == 0, "".join(lines[-40:])
    assert set(statuses) == {200}, statuses
    assert after == answered_edited and not after & before, (before, after, answered_edited)
    wait_until(lambda: all_gone(started), timeout=10, what="every process gone")
    assert twin.processes() == []
    print(f"edit -> two new tasks serving: {seconds:.1f} s, {statuses.total()} requests")
