"""A new control plane taking over the data plane a killed one left serving.

    previous = PreviousRun.find(state_dir, network_mode)   # None: nothing to take over
    previous.set_aside()        # what the new run replaces becomes "previous-*"
    runtime.adopt(previous.listening, previous.caddy_folders)
    ...                         # the new twin starts beside it, until ready
    await previous.retire(runtime.take_over_adopted, linger)   # old Caddy stopped, tasks later

Loopback mode: while the new twin starts, the old Caddy and the new one accept on the
same listening sockets (the old run's target lookup process kept them and hands them
over), and both look targets up at the adopted lookup process, which keeps answering the
old run's targets; discovery keeps answering the old run's records. Once every service
is healthy, the new targets and records are published, the old Caddy is stopped
gracefully (its requests in flight finish), and the old tasks are stopped after the
longest discovery TTL (a client may have cached their addresses).

VPC mode: the new control plane makes a new VPC beside the old one (namespaces are held
by descriptors, so the two never meet) with its own tasks, load balancers and DNS
processes; the old run's folders (``caddy-<name>/``, ``dns/``) are set aside as
``previous-*``, where its DNS processes keep answering their last snapshots. Only the
internet-facing listeners on this machine are shared: the old run's target lookup
processes hand their sockets over, the new Caddys listen on the idle socket of each pair
and get no connection until every new service is healthy; then new connections are
steered to them, the old Caddys are stopped gracefully, and the old VPC goes with its
processes.

No listening socket closes at any point, so no connection is refused. A run whose data
plane is incomplete, or whose listeners are not the new spec's, is stopped instead
(`state.sweep`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from fargo.local.caddy.process import RECORD_SUFFIX
from fargo.local.dataplane_dns import discovery, targets
from fargo.local.events import about
from fargo.local.loops import cancel_and_wait
from fargo.local.state import folder as state

logger = logging.getLogger(__name__)
TWIN = about("twin", "control plane")

PREFIX = state.SET_ASIDE_PREFIX
CADDY = "caddy"
ADOPTED = (f"{CADDY}{targets.PROCESS_SUFFIX}", discovery.PROCESS_NAME)  # loopback mode: kept
UNAVAILABLE_SOCKET = Path(CADDY) / "unavailable.sock"
DNS_FOLDER = discovery.SNAPSHOT.parent.name
SETTLE_SECONDS = 0.5  # both Caddys look the new targets up before the old one stops
# The new Caddy's admin API is parked while the old one stops: its watchdog allows 5 s.
CADDY_STOP_SECONDS = 3.0
CADDY_SOCKETS = ("admin.sock", "unavailable.sock")


@dataclass
class PreviousRun:
    """What a killed control plane left serving on this state folder."""

    state_dir: Path
    records: list[state.ProcessRecord]
    network_mode: str = "loopback"
    listening: set[str] = field(default_factory=set)  # addresses its processes listen on
    # VPC mode: each Caddy's name → its folder, set aside (`set_aside`)
    caddy_folders: dict[str, Path] = field(default_factory=dict)
    _later: asyncio.Task[None] | None = None

    @classmethod
    def find(cls, state_dir: Path, network_mode: str) -> PreviousRun | None:
        """The previous run's data plane if it can be taken over. Loopback mode: its Caddy
        and both DNS processes running, and their addresses recorded. VPC mode: a Caddy
        running with the lookup process that keeps its listeners (the new spec's
        internet-facing load balancers must each have one: `Runtime.adopt`)."""
        if not state.is_state_dir(state_dir):
            return None
        records = [r for r in state.recorded_processes(state_dir) if r.running()]
        names = {r.path.stem for r in records if r.alive()}
        others = [r for r in records if r.path.name != state.CONTROL_PLANE_RECORD]
        if network_mode == "vpc":
            # A run that crashed while taking another over: its Caddys may stand by on the
            # socket a new take-over would steer to, routing into a VPC never made ready.
            # Everything is stopped instead.
            if any(name.startswith(PREFIX) for name in names):
                return None
            if not _vpc_caddys(state_dir, records, names):
                return None
            return cls(state_dir, others, network_mode)
        if network_mode != "loopback" or not {CADDY, *ADOPTED} <= names:
            return None
        if not (state_dir / CADDY / targets.ADDRESS_FILE).is_file():
            return None
        if not (state_dir / discovery.ADDRESS).is_file():
            return None
        return cls(state_dir, others, network_mode)

    def describe(self) -> list[str]:
        tasks = sum(1 for r in self.records if r.what.startswith("task "))
        others = [f"{r.what} (pid {r.pid})" for r in self.records if not r.what.startswith("task ")]
        return [*others, f"{tasks} task{'s' if tasks != 1 else ''}"]

    def set_aside(self) -> None:
        """Rename the records of what the new run replaces to ``previous-*``, so the new
        run's records do not overwrite them: loopback mode, its Caddy, tasks and log router
        (and the old Caddy's 503 socket, for the new Caddy: the old one's forwards reach the
        new one's, which answers the same); VPC mode, everything, and its Caddys' and DNS
        server's folders, where the new run's would replace the snapshots its DNS processes
        answer from."""
        vpc = self.network_mode == "vpc"
        caddys = [
            name
            for r in self.records
            if vpc and not r.path.stem.startswith(PREFIX) and (name := _caddy_name(r))
        ]
        for record in self.records:
            name = record.path.stem
            if (name in ADOPTED and not vpc) or name.startswith(PREFIX):
                continue
            with contextlib.suppress(FileNotFoundError):
                record.path.rename(_unused(record.path.with_name(f"{PREFIX}{name}.json")))
        if vpc:
            for name in caddys:
                with contextlib.suppress(FileNotFoundError):
                    self.caddy_folders[name] = _set_aside(self.state_dir / name)
            with contextlib.suppress(FileNotFoundError):
                _set_aside(self.state_dir / DNS_FOLDER)
            return
        unavailable = self.state_dir / UNAVAILABLE_SOCKET
        with contextlib.suppress(FileNotFoundError):
            unavailable.rename(unavailable.with_name(f"{PREFIX}{unavailable.name}"))
        self.listening = _listening_addresses()

    async def retire(
        self,
        take_over: Callable[[], Awaitable[None]],
        linger_seconds: float,
        *,
        first: Collection[str] = (),
    ) -> None:
        """Serve from the new run (``take_over``), stop the old Caddys gracefully (those
        named in ``first``, whose listeners were taken over, before the others: an
        internal load balancer answers what the old tasks call for requests in flight),
        and the old tasks and log router (VPC mode: everything of the old run) after
        ``linger_seconds``."""
        await take_over()
        await asyncio.sleep(SETTLE_SECONDS)
        caddys = [(name, r) for r in self._records(PREFIX) if (name := _caddy_name(r))]
        caddys.sort(key=lambda found: found[0] not in first)
        for name, caddy in caddys:
            # Stopping, the old Caddy unlinks its unix sockets by path: the admin API's
            # and the 503 server's, which are the new Caddy's paths now. They are parked
            # under other names meanwhile (the new Caddy keeps listening on them).
            with self._parked([self.state_dir / name / file for file in CADDY_SOCKETS]):
                await asyncio.to_thread(_stop_gracefully, caddy)
            caddy.path.unlink(missing_ok=True)
        logger.info(
            "the new run serves; the crashed run's Caddy stopped, its tasks stop in %g s",
            linger_seconds,
            extra=TWIN,
        )
        self._later = asyncio.create_task(self._stop_later(linger_seconds))

    async def _stop_later(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        stopped = await asyncio.to_thread(
            state.sweep, self.state_dir, only=lambda r: r.path.stem.startswith(PREFIX)
        )
        state.remove_set_aside(self.state_dir)
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


def _caddy_name(record: state.ProcessRecord) -> str | None:
    """The Caddy's name (``caddy``, ``caddy-<load balancer>``) if ``record`` is a Caddy's."""
    if record.what.endswith(RECORD_SUFFIX) and record.what.startswith(CADDY):
        return record.what.removesuffix(RECORD_SUFFIX)
    return None


def _vpc_caddys(state_dir: Path, records: list[state.ProcessRecord], alive: set[str]) -> bool:
    """Whether a Caddy of a VPC-mode run runs with the lookup process keeping its listeners."""
    for record in records:
        name = _caddy_name(record)
        if name is None or record.path.stem != name or not record.alive():
            continue
        lookups = f"{name}{targets.PROCESS_SUFFIX}"
        if lookups in alive and (state_dir / name / targets.HANDOVER_SOCKET).exists():
            return True
    return False


def _unused(path: Path) -> Path:
    """``path``, or ``<stem>-N<suffix>`` beside it if taken (a run that crashed while
    taking another over)."""
    candidate, count = path, 1
    while candidate.exists():
        count += 1
        candidate = path.with_name(f"{path.stem}-{count}{path.suffix}")
    return candidate


def _set_aside(folder: Path) -> Path:
    """Rename ``folder`` to ``previous-<name>``; where it is now."""
    target = _unused(folder.with_name(f"{PREFIX}{folder.name}"))
    folder.rename(target)
    return target
