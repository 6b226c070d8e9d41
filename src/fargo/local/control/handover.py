"""A new control plane taking over the data plane a killed one left serving (loopback mode).

    previous = PreviousRun.find(state_dir, network_mode)   # None: nothing to take over
    previous.set_aside()        # its Caddy, tasks and log router become "previous-*"
    runtime.adopt(previous)     # listeners and DNS processes adopted, its addresses reserved
    ...                         # the new twin starts beside it, until ready
    await previous.retire(runtime)   # new targets and records, old Caddy stopped, old tasks later

While the new twin starts, the old Caddy and the new one accept on the same listening
sockets (the old run's target lookup process kept them and hands them over), and both
look targets up at the adopted lookup process, which keeps answering the old run's
targets; discovery keeps answering the old run's records. Once every service is
healthy, the new targets and records are published, the old Caddy is stopped gracefully
(its requests in flight finish), and the old tasks are stopped after the longest
discovery TTL (a client may have cached their addresses). No listening socket closes
at any point, so no connection is refused.

VPC mode is not taken over: a new control plane makes a new VPC, so it stops what the
old one left (`state.sweep`), as does a run whose data plane is incomplete.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from fargo.local.events import about
from fargo.local.loops import cancel_and_wait
from fargo.local.state import folder as state

logger = logging.getLogger(__name__)
TWIN = about("twin", "control plane")

PREFIX = "previous-"
CADDY = "caddy"
ADOPTED = ("caddy-targets", "dns-discovery")  # kept, under their own names
UNAVAILABLE_SOCKET = Path("caddy") / "unavailable.sock"
SETTLE_SECONDS = 0.5  # both Caddys look the new targets up before the old one stops
# The new Caddy's admin API is parked while the old one stops: its watchdog allows 5 s.
CADDY_STOP_SECONDS = 3.0
CADDY_SOCKETS = ("admin.sock", "unavailable.sock")


@dataclass
class PreviousRun:
    """What a killed control plane left serving on this state folder."""

    state_dir: Path
    records: list[state.ProcessRecord]
    listening: set[str] = field(default_factory=set)  # addresses its processes listen on
    _later: asyncio.Task[None] | None = None

    @classmethod
    def find(cls, state_dir: Path, network_mode: str) -> PreviousRun | None:
        """The previous run's data plane if it can be taken over: loopback mode, its Caddy
        and both DNS processes running, and their addresses recorded."""
        if network_mode != "loopback" or not state.is_state_dir(state_dir):
            return None
        records = [r for r in state.recorded_processes(state_dir) if r.running()]
        names = {r.path.stem for r in records if r.alive()}
        if not {CADDY, *ADOPTED} <= names:
            return None
        if not (state_dir / "caddy" / "targets.address").is_file():
            return None
        if not (state_dir / "dns" / "discovery.address").is_file():
            return None
        return cls(state_dir, [r for r in records if r.path.name != state.CONTROL_PLANE_RECORD])

    def describe(self) -> list[str]:
        tasks = sum(1 for r in self.records if r.what.startswith("task "))
        others = [f"{r.what} (pid {r.pid})" for r in self.records if not r.what.startswith("task ")]
        return [*others, f"{tasks} task{'s' if tasks != 1 else ''}"]

    def set_aside(self) -> None:
        """Rename the records of what the new run replaces (Caddy, tasks, log router) to
        ``previous-*``, so the new run's records do not overwrite them, and move the old
        Caddy's 503 socket aside for the new Caddy (the old one's forwards reach the new
        one's, which answers the same)."""
        for record in self.records:
            name = record.path.stem
            if name in ADOPTED or name.startswith(PREFIX):
                continue
            target = record.path.with_name(f"{PREFIX}{name}.json")
            count = 1
            while target.exists():  # a run that crashed while taking another over
                count += 1
                target = record.path.with_name(f"{PREFIX}{name}-{count}.json")
            with contextlib.suppress(FileNotFoundError):
                record.path.rename(target)
        unavailable = self.state_dir / UNAVAILABLE_SOCKET
        with contextlib.suppress(FileNotFoundError):
            unavailable.rename(unavailable.with_name(f"{PREFIX}{unavailable.name}"))
        self.listening = _listening_addresses()

    async def retire(self, release: Callable[[], None], linger_seconds: float) -> None:
        """Publish the new run's targets and records (``release``), stop the old Caddy
        gracefully, and the old tasks and log router after ``linger_seconds``."""
        release()
        await asyncio.sleep(SETTLE_SECONDS)
        for caddy in self._records(f"{PREFIX}{CADDY}"):
            # Stopping, the old Caddy unlinks its unix sockets by path: the admin API's
            # and the 503 server's, which are the new Caddy's paths now. They are parked
            # under other names meanwhile (the new Caddy keeps listening on them).
            with self._parked([self.state_dir / "caddy" / name for name in CADDY_SOCKETS]):
                await asyncio.to_thread(_stop_gracefully, caddy)
            caddy.path.unlink(missing_ok=True)
        logger.info(
            "the new targets and records serve; the crashed run's Caddy stopped, its tasks "
            "stop in %g s",
            linger_seconds,
            extra=TWIN,
        )
        self._later = asyncio.create_task(self._stop_later(linger_seconds))

    async def _stop_later(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        stopped = await asyncio.to_thread(
            state.sweep, self.state_dir, only=lambda r: r.path.stem.startswith(PREFIX)
        )
        if stopped:
            logger.info("stopped what the crashed run left: %s", ", ".join(stopped), extra=TWIN)

    async def stop(self) -> None:
        later, self._later = self._later, None
        await cancel_and_wait(later)

    @staticmethod
    @contextlib.contextmanager
    def _parked(paths: list[Path]) -> Iterator[None]:
        parked = []
        try:
            for path in paths:
                with contextlib.suppress(FileNotFoundError):
                    path.rename(path.with_name(f".parked-{path.name}"))
                    parked.append(path)
            yield
        finally:
            for path in parked:
                with contextlib.suppress(FileNotFoundError):
                    path.with_name(f".parked-{path.name}").rename(path)

    def _records(self, prefix: str) -> list[state.ProcessRecord]:
        return [
            r for r in state.recorded_processes(self.state_dir) if r.path.stem.startswith(prefix)
        ]


def _stop_gracefully(record: state.ProcessRecord) -> None:
    """SIGTERM (Caddy finishes the requests in flight), SIGKILL after a while."""
    if not record.alive():
        return
    with contextlib.suppress(psutil.Error):
        process = psutil.Process(record.pid)
        process.terminate()
        _, alive = psutil.wait_procs([process], timeout=CADDY_STOP_SECONDS)
        for left in alive:
            left.kill()


def _listening_addresses() -> set[str]:
    """IPv4 addresses something listens on (TCP): no new task may take one."""
    addresses = set()
    with contextlib.suppress(psutil.Error, OSError):
        for connection in psutil.net_connections("tcp4"):
            if connection.status == psutil.CONN_LISTEN and connection.laddr:
                addresses.add(str(connection.laddr.ip))
    return addresses
