"""A hung data plane, as a user meets it: `fargo status` says it is down, then it serves again."""

from __future__ import annotations

import contextlib
import os
import signal
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.e2e.conftest import Twin, fargo, start_twin
from tests.waiting import wait_until

from fargo.local.status import DataPlaneState

pytestmark = pytest.mark.slow  # starts a twin

HERE = Path(__file__).parent


@pytest.fixture
def twin(tmp_path: Path) -> Iterator[Twin]:
    yield from start_twin(HERE / "second.yaml", tmp_path / "state")


def test_a_stopped_caddy_shows_as_down_and_is_replaced(twin: Twin) -> None:
    (plane,) = twin.status().load_balancers.data_planes
    assert plane.state is DataPlaneState.SERVING and plane.pid is not None
    url = twin.url("edge", "https") + "/a/x"
    verify = ssl.create_default_context(cafile=twin.ca)
    assert httpx.get(url, verify=verify, timeout=10).status_code == 200

    os.kill(plane.pid, signal.SIGSTOP)
    try:
        said = wait_until(
            lambda: _down_line(fargo("status", "--state-dir", str(twin.state_dir)).stdout),
            timeout=10,
            what="`fargo status` saying the data plane is down",
        )
        assert "has not answered its admin API" in said or "was killed" in said, said
        # Meanwhile a request waits in the listener's queue, and the new Caddy answers it.
        answered = httpx.get(url, verify=verify, timeout=30)
        assert answered.status_code == 200
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(plane.pid, signal.SIGCONT)
    (after,) = twin.status().load_balancers.data_planes
    assert after.state is DataPlaneState.SERVING and after.pid not in (None, plane.pid)
    assert after.restarts == 1
    text = fargo("status", "--state-dir", str(twin.state_dir)).stdout
    assert _down_line(text) is None and "every target healthy" in text


def _down_line(text: str) -> str | None:
    return next((line for line in text.splitlines() if "data plane down" in line), None)
