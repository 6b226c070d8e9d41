"""Application Auto Scaling on real load: the internal load balancer's service scales out
under CPU load, its new task takes traffic, and it scales back to its minimum after the
load, draining what it stops (no request fails); a request count policy scales it out on
the requests each target takes. Each step in `fargo events`."""

from __future__ import annotations

import collections
import contextlib
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.e2e.conftest import ROOT, Twin, fargo, make_twin
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

SERVICE = "backend-private-with-alb"  # min 2, max 4
PATH = "/api/private-with-alb"  # answered by SERVICE's task: "TaskId: <id>"
# The reference system's 70 % of a quarter vCPU needs more requests a second than a test's
# client makes on a shared machine: the same policy, at 10 %.
TARGET = 10
# Requests a target takes a minute: 10 a second, far below what the load makes.
REQUESTS_TARGET = 600
TIME_SCALE = "0.02"  # a 60 s period is 1.2 s; 15 datapoints, 18 s
LOAD_THREADS = 6
# While the service scales in: a request every 50 ms, too few to hold it out.
TRICKLE_PAUSE = 0.05
REFERENCE_AUTOSCALING = "target_cpu_utilization: 70"


def up(folder: Path, spec: str) -> Iterator[Twin]:
    (folder / "fargo.yaml").write_text(spec)
    (folder / "services").symlink_to(ROOT / "services")
    twin = make_twin(folder / "fargo.yaml", folder / "state")
    fargo("up", "--detach", *twin.up_args(), "--time-scale", TIME_SCALE)
    try:
        yield twin
    finally:
        fargo("down", "--state-dir", str(twin.state_dir), check=False)


def reference_spec() -> str:
    spec = (ROOT / "fargo.yaml").read_text()
    assert REFERENCE_AUTOSCALING in spec
    return spec


@pytest.fixture
def twin(tmp_path: Path) -> Iterator[Twin]:
    spec = reference_spec().replace(REFERENCE_AUTOSCALING, f"target_cpu_utilization: {TARGET}")
    yield from up(tmp_path, spec)


@pytest.fixture
def requests_twin(tmp_path: Path) -> Iterator[Twin]:
    """Scaling on requests alone, in a VPC range of its own (a twin of the reference
    system may run beside it)."""
    spec = reference_spec().replace(
        REFERENCE_AUTOSCALING,
        f"target_cpu_utilization: null\n      target_requests_per_target: {REQUESTS_TARGET}",
    )
    yield from up(tmp_path, spec.replace("10.0.", "10.179."))


class Answers:
    """What the requests got: the task ids that answered (``TaskId: <id>``), the statuses."""

    def __init__(self) -> None:
        self.tasks: collections.Counter[str] = collections.Counter()
        self.statuses: collections.Counter[int | str] = collections.Counter()
        self._lock = threading.Lock()

    def add(self, status: int | str, body: str = "") -> None:
        with self._lock:
            self.statuses[status] += 1
            if status == 200 and body.startswith("TaskId: "):
                self.tasks[body.removeprefix("TaskId: ").strip()] += 1


@contextlib.contextmanager
def requesting(twin: Twin, *, threads: int = 1, pause: float = 0.0) -> Iterator[Answers]:
    """Requests to `PATH` through the public HTTPS listener, one after another (``pause``
    between two) in each of ``threads``, until the block ends."""
    answers = Answers()
    done = threading.Event()
    url = twin.url("public", "https") + PATH

    def load() -> None:
        verify = ssl.create_default_context(cafile=twin.ca)
        with httpx.Client(verify=verify, timeout=10) as client:
            while not done.is_set():
                try:
                    answer = client.get(url)
                    answers.add(answer.status_code, answer.text)
                except httpx.HTTPError as err:
                    answers.add(type(err).__name__)
                if pause:
                    done.wait(pause)

    workers = [threading.Thread(target=load) for _ in range(threads)]
    for worker in workers:
        worker.start()
    try:
        yield answers
    finally:
        done.set()
        for worker in workers:
            worker.join()


def scaling_events(twin: Twin) -> list[str]:
    return [
        line for line in service_events(twin).splitlines() if "Application Auto Scaling" in line
    ]


def service_events(twin: Twin) -> str:
    return fargo("events", "--service", SERVICE, "--state-dir", str(twin.state_dir)).stdout


def task_ids(twin: Twin) -> set[str]:
    return {t.id for t in twin.service(SERVICE).tasks}


def scale_out_under_load(twin: Twin) -> tuple[set[str], Answers]:
    """Load until SERVICE has scaled out and a task it started has answered: the tasks it
    had before, and the answers."""
    before = task_ids(twin)
    assert len(before) == 2, before
    with requesting(twin, threads=LOAD_THREADS) as answers:
        wait_until(lambda: twin.service(SERVICE).desired >= 3, timeout=90, what="a scale-out")
        wait_until(
            lambda: twin.service(SERVICE).healthy >= 3, timeout=60, what="the new task in service"
        )
        # A scaled-out task registers, passes its health checks and takes traffic.
        wait_until(
            lambda: set(answers.tasks) - before, timeout=20, what="an answer from a new task"
        )
    return before, answers


def test_cpu_load_scales_out_and_quiet_scales_back_in(twin: Twin) -> None:
    before, answers = scale_out_under_load(twin)
    out = scaling_events(twin)
    assert any(
        "CPUUtilization" in e and f"> {TARGET} % target for 3 datapoints: 2 → " in e for e in out
    ), out
    assert set(answers.statuses) == {200}, answers.statuses
    assert set(answers.tasks) - before <= task_ids(twin)  # the new ones are the service's

    # Scale-in drains what it stops: requests keep coming, to the tasks it stops too, and
    # none fails.
    scaled_out = task_ids(twin)
    started = time.monotonic()
    with requesting(twin, pause=TRICKLE_PAUSE) as trickle:
        wait_until(lambda: twin.service(SERVICE).desired == 2, timeout=120, what="the scale-in")
        wait_until(lambda: len(twin.service(SERVICE).tasks) == 2, timeout=60, what="drained")
    everything = service_events(twin)
    assert set(trickle.statuses) == {200}, (trickle.statuses, everything)
    assert sum(trickle.statuses.values()) >= 2 * (time.monotonic() - started), trickle.statuses
    stopped_by_scale_in = scaled_out - task_ids(twin)
    assert len(stopped_by_scale_in) == len(scaled_out) - 2
    assert stopped_by_scale_in <= set(trickle.tasks), (stopped_by_scale_in, trickle.tasks)
    back = scaling_events(twin)
    assert any("for 15 datapoints" in e and "→ 2 tasks" in e for e in back), everything
    stopped = [line for line in everything.splitlines() if "stopped task" in line]
    assert any("Scaling activity" in line for line in stopped), everything


def test_requests_per_target_scale_out(requests_twin: Twin) -> None:
    before, answers = scale_out_under_load(requests_twin)

    out = scaling_events(requests_twin)
    assert any(
        "ALBRequestCountPerTarget" in e
        and f"> {REQUESTS_TARGET} target for 3 datapoints: 2 → " in e
        for e in out
    ), out
    assert not any("CPUUtilization" in e for e in out), out
    assert set(answers.statuses) == {200}, answers.statuses
    assert len(set(answers.tasks) - before) >= 1
