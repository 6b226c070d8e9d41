"""A full disk is not an outage: a twin whose state folder is a real small tmpfs, filled up
while it serves under load, answers every request; the disk problem is reported once."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from tests.e2e.conftest import fargo, make_twin, under_load
from tests.full_disk import small_tmpfs
from tests.waiting import wait_until

pytestmark = pytest.mark.slow  # starts a twin

HERE = Path(__file__).parent
LOAD_SECONDS = 8.0
WARNING = "refuses writes"


def test_a_full_state_folder_fails_no_request_and_is_reported_once(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "state", size="256m") as disk:
        twin = make_twin(HERE / "full_disk.yaml", disk.path)
        fargo("up", "--detach", *twin.up_args())
        try:
            disk.shrink_to_used(room_bytes=256 * 1024)  # a small disk now, nearly full
            with under_load(twin, "/api/public", scheme="http", threads=2) as seen:
                wait_until(lambda: sum(seen.values()) > 50, what="load")
                disk.fill()
                status = wait_until(
                    lambda: (s := twin.status()).disk.problem and s, what="the disk report"
                )
                served = sum(seen.values())
                time.sleep(LOAD_SECONDS)  # the load runs on against a full disk
                during = sum(seen.values()) - served
            assert set(seen) == {200}, seen
            assert during > 100, f"only {during} requests in {LOAD_SECONDS:g} s of a full disk"
            assert status.disk.problem == "No space left on device (ENOSPC)"
            after = twin.status().disk
            assert after.dropped_log_lines > 0, after

            disk.free()
            wait_until(lambda: twin.status().disk.problem is None, timeout=30, what="room again")
            printed = fargo("events", "--json", "--state-dir", str(twin.state_dir)).stdout
            messages = [json.loads(line)["message"] for line in printed.splitlines()]
            warned = [m for m in messages if WARNING in m]
            assert len(warned) == 1, warned
            assert "the services keep serving" in warned[0]
            assert [m for m in messages if "has room again" in m], messages[-5:]
        finally:
            disk.free()
            fargo("down", "--state-dir", str(twin.state_dir), check=False)
