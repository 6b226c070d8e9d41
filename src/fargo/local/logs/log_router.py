"""The log router as a part of the twin: started before the tasks, stopped after them.

    router = LogRouter(state_dir)
    await router.start()
    log = router.attach(task.log_path)   # the write end of the task's pipe: its stdout
    ...spawn the task with stdout=log...; log.close()

The router is a process of its own (`fargo.local.logs.router`), recorded in the state
folder's pid records so ``fargo down`` stops it even after a crash of the control
plane. If it has died, `attach` starts it again; the tasks it was reading lose their
pipe (as a task on AWS loses a FireLens sidecar), new tasks log again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from fargo.local.logs.dropped import DroppedWrites
from fargo.local.logs.own_logs import MAX_OWN_LOG_BYTES, cap
from fargo.local.logs.router import KEEP_ROTATED, MAX_STREAM_BYTES, attach_pipe, router_status
from fargo.local.logs.runs import archive_previous_run, expire
from fargo.local.loops import cancel_and_wait, keep_running
from fargo.local.state import folder as state

START_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 8.0
RECORD = "log-router"
EXPIRE_SECONDS = 300.0  # how often logs past the retention or the size cap are looked for


class LogRouter:
    name = "log router"

    def __init__(
        self,
        state_dir: Path,
        *,
        retention_days: int,
        max_bytes: int = MAX_STREAM_BYTES,
        keep: int = KEEP_ROTATED,
        expire_seconds: float = EXPIRE_SECONDS,
        own_log_bytes: int = MAX_OWN_LOG_BYTES,
    ) -> None:
        self.state_dir = state_dir
        self.retention_days = retention_days
        self.max_bytes = max_bytes
        self.keep = keep
        self.logs = state_dir / "logs"
        self.socket_path = state_dir / "log-router.sock"
        self.process: subprocess.Popen[bytes] | None = None
        self.expire_seconds = expire_seconds
        self.own_log_bytes = own_log_bytes
        self._expiring: asyncio.Task[None] | None = None

    def validate(self) -> list[str]:
        limit = 107  # sun_path holds 108 bytes with the terminating NUL
        # the router binds ``<socket>.new`` first, then renames it
        if len(os.fsencode(self.socket_path.resolve())) + len(".new") > limit:
            return [f"the log router's socket path {self.socket_path} is too long for a socket"]
        return []

    async def start(self) -> None:
        """Move the previous run's task logs aside, then start the router."""
        await asyncio.to_thread(archive_previous_run, self.logs, retention_days=self.retention_days)
        await asyncio.to_thread(self._launch)
        self._expiring = keep_running("log retention", self._expire_forever)

    async def _expire_forever(self) -> None:
        """`logging.retention_days` while the twin runs: rotated files, streams of tasks
        stopped long ago and earlier runs past it are deleted; the twin's own logs are
        kept under their size cap (`own_logs.cap`)."""
        while True:
            await asyncio.sleep(self.expire_seconds)
            await asyncio.to_thread(expire, self.logs, retention_days=self.retention_days)
            await asyncio.to_thread(cap, self.logs, max_bytes=self.own_log_bytes)

    def _launch(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.socket_path.unlink(missing_ok=True)
        with (self.logs / "log-router.log").open("ab") as own_log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "fargo.local.logs.router",
                    "--socket",
                    str(self.socket_path),
                    "--logs",
                    str(self.logs),
                    "--max-bytes",
                    str(self.max_bytes),
                    "--keep",
                    str(self.keep),
                ],
                stdin=subprocess.DEVNULL,
                stdout=own_log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C on `fargo up` must not reach it
            )
        state.record_process(self.state_dir, RECORD, self.process.pid, "log router")
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self.socket_path.exists():
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the log router exited with status {self.process.returncode} "
                    f"(see {self.logs / 'log-router.log'})"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the log router did not listen within {START_TIMEOUT_SECONDS:g} s"
                )
            time.sleep(0.01)

    def attach(self, stream: Path) -> IO[bytes]:
        """The write end of a new pipe whose lines the router keeps in ``stream`` (a task's
        log file, under the state folder's ``logs``)."""
        if self.process is None or self.process.poll() is not None:
            self._launch()  # died (or never started): new tasks log again
        read_end, write_end = os.pipe()
        try:
            attach_pipe(self.socket_path, str(stream.relative_to(self.logs)), read_end)
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        return os.fdopen(write_end, "wb")

    def dropped(self) -> DroppedWrites | None:
        """What the router dropped so far (a full disk); None while it is not running."""
        if self.process is None or self.process.poll() is not None:
            return None
        try:
            return router_status(self.socket_path)
        except OSError:
            return None

    async def stop(self) -> None:
        expiring, self._expiring = self._expiring, None
        await cancel_and_wait(expiring)
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(process.wait, STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)
        state.forget_process(self.state_dir, RECORD)
        self.socket_path.unlink(missing_ok=True)


class DirectLogFiles:
    """Task output appended straight to its log file, unstamped: for a cluster run without
    a log router (tests of the scheduler alone)."""

    def attach(self, stream: Path) -> IO[bytes]:
        stream.parent.mkdir(parents=True, exist_ok=True)
        return stream.open("ab")
