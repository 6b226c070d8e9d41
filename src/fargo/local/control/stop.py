"""Stopping a twin (``fargo down``, or ``fargo up --detach`` giving up).

The control plane is asked over its socket to drain and stop its tasks; if it cannot be
asked it is signalled. Whatever recorded process is left over is swept afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path

import psutil

from fargo.local.control.client import ControlClient, ControlError
from fargo.local.state import folder as state

# After `POST /down` was accepted: the control plane drains and stops every task.
DOWN_TIMEOUT_SECONDS = 60.0
# After SIGTERM, when the control plane could not be asked (still starting, or stuck).
SIGNAL_GRACE_SECONDS = 15.0
# `fargo down` right after `fargo up`: the lock holder records itself within moments.
RECORD_WAIT_SECONDS = 2.0


def control_plane_of(state_dir: Path) -> state.ProcessRecord | None:
    """The folder's control plane: its record, or the lock holder while it is still starting."""
    deadline = time.monotonic() + RECORD_WAIT_SECONDS
    while True:
        if (record := state.control_plane(state_dir)) is not None:
            return record
        if (pid := state.lock_holder(state_dir)) is None:
            return None
        if time.monotonic() >= deadline:
            try:
                created = psutil.Process(pid).create_time()
            except psutil.Error:
                return None
            path = state_dir / state.PID_DIRECTORY / state.CONTROL_PLANE_RECORD
            return state.ProcessRecord(path, pid, created, "control plane")
        time.sleep(0.05)


def stop_twin(state_dir: Path, control: state.ProcessRecord | None) -> list[str]:
    """Stop the control plane and wait for it to exit; then stop any recorded leftover.

    It is asked over its socket; if that fails (still starting, or stuck) it gets SIGTERM
    at once and a short grace instead of the full drain time.
    """
    if control is not None:
        client = ControlClient(state.control_socket(state_dir), timeout=5)
        try:
            asyncio.run(client.post("/down"))
            wait = DOWN_TIMEOUT_SECONDS
        except ControlError:
            if control.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(control.pid, signal.SIGTERM)
            wait = SIGNAL_GRACE_SECONDS
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and control.alive():
            time.sleep(0.05)
    stopped = state.sweep(state_dir)
    state.remove_set_aside(state_dir)  # a take-over's, if its control plane was killed
    return stopped
