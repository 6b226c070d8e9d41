"""One data-plane DNS process, as the control plane starts, records and stops it.

    dns = DnsProcess(state_dir, "dns-discovery", "discovery", snapshot_path)
    await dns.start([udp_socket, tcp_socket])   # answering once this returns
    await dns.stop()                             # SIGTERM, then SIGKILL; idempotent
    dns.keep(respawn, answers)                   # started again if it ends or hangs

The process (``python -m fargo.local.dataplane_dns``, `fargo.local.dataplane_dns.serve`)
runs in a session of its own, is recorded in ``pids/<name>.json`` (so `fargo down` and
the next `fargo up` stop it when the control plane is gone) and logs to
``logs/<name>.log``. It gets the sockets the control plane bound (in a VPC's namespaces
too) as file descriptors and answers on them until it is stopped: it does not watch its
parent, so a killed or stopped control plane leaves it answering. Its owner keeps it
alive the other way round: `keep_alive` waits for the process (its own or one it
adopted) to end, logs why, and has the owner start it again on its sockets; meanwhile
`problem` says it is down. A process that stops answering (stopped, deadlocked) is
found by a query every second (`answers_dns`): after `HUNG_AFTER_SECONDS` of queries
in a row without an answer it is killed, and started again the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

import dns.exception
import dns.message
import psutil

import fargo
from fargo.local.child_processes import terminate
from fargo.local.loops import cancel_and_wait, keep_running
from fargo.local.state import folder as state
from fargo.local.state.files import log_tail

START_TIMEOUT_SECONDS = 20.0
PROBE_INTERVAL_SECONDS = 1.0  # how often `keep_alive` asks the process
HUNG_AFTER_SECONDS = 3.0  # unanswered this long, it is killed and started again
PROBE_NAME = "fargo-liveness.invalid."  # a name no zone holds: any answer will do
STOP_TIMEOUT_SECONDS = 5.0
READY = b"ready\n"

logger = logging.getLogger(__name__)


class DnsProcessError(RuntimeError):
    """The DNS process did not start; the message has the end of its log."""


class DnsProcess:
    """``python -m fargo.local.dataplane_dns`` serving one snapshot on inherited sockets."""

    def __init__(self, state_dir: Path, name: str, kind: str, snapshot: Path, what: str) -> None:
        self.state_dir = state_dir
        self.name = name
        self.kind = kind
        self.snapshot = snapshot
        self.what = what
        self.log_path = state_dir / "logs" / f"{name}.log"
        self._process: asyncio.subprocess.Process | None = None
        self._adopted: psutil.Process | None = None  # one a previous control plane started
        self.restarts = 0  # started again after it ended on its own
        self.restarting = True  # False once the twin stops: one that ends stays down
        self._keeper: asyncio.Task[None] | None = None  # `keep`'s loop
        self.problem: str | None = None  # why it is not answering, until started again

    @property
    def pid(self) -> int | None:
        if self._adopted is not None:
            return self._adopted.pid if self._adopted.is_running() else None
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    def adopt(self) -> bool:
        """Take over this name's process that a killed control plane left running."""
        for record in state.recorded_processes(self.state_dir):
            if record.path.stem == self.name and record.alive():
                self._adopted = psutil.Process(record.pid)
                return True
        return False

    def disown(self) -> None:
        """Undo `adopt` (leave that process alone)."""
        self._adopted = None

    async def start(
        self,
        sockets: Sequence[socket.socket],
        *,
        keep: Mapping[str, socket.socket] | None = None,
        handover: Path | None = None,
    ) -> None:
        """Start the process on ``sockets`` (UDP, then TCP if any) and wait until it answers.

        ``keep``: listening sockets (by name) it holds and hands over at ``handover``."""
        if self._process is not None or self._adopted is not None:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        read_end, write_end = os.pipe()
        kept = dict(keep or {})
        fds = [s.fileno() for s in sockets]
        argv = [sys.executable, "-m", "fargo.local.dataplane_dns", self.kind, str(self.snapshot)]
        argv += ["--ready-fd", str(write_end), *[f"--fd={fd}" for fd in fds]]
        argv += [f"--listener={name}={sock.fileno()}" for name, sock in kept.items()]
        if handover is not None and kept:
            argv += ["--handover", str(handover)]
        fds += [sock.fileno() for sock in kept.values()]
        try:
            with self.log_path.open("ab") as log:
                self._process = await asyncio.create_subprocess_exec(
                    *argv,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    pass_fds=[write_end, *fds],
                    start_new_session=True,  # outlives the control plane, and its Ctrl-C
                    env=_environment(),
                )
            os.close(write_end)
            write_end = -1
            state.record_process(self.state_dir, self.name, self._process.pid, self.what)
            await self._wait_ready(read_end)
        except BaseException:
            await self._end()  # not `stop`: a respawn runs in the keeper it would cancel
            raise
        finally:
            os.close(read_end)
            if write_end >= 0:
                os.close(write_end)

    @property
    def kept(self) -> bool:
        """Whether `keep` runs (the process is its owner's to start again)."""
        return self._keeper is not None

    def keep(
        self,
        respawn: Callable[[], Awaitable[None]],
        answers: Callable[[float], Awaitable[bool]] | None = None,
    ) -> None:
        """Keep the process alive until `stop` (`keep_alive`, restarted if it fails)."""
        self.restarting = True
        if self._keeper is None:
            self._keeper = keep_running(
                f"{self.name} keeper", lambda: self.keep_alive(respawn, answers)
            )

    async def stop(self) -> None:
        """Stop keeping the process alive, then stop it (SIGTERM, then SIGKILL); idempotent."""
        keeper, self._keeper = self._keeper, None
        await cancel_and_wait(keeper)
        await self._end()

    async def _end(self) -> None:
        adopted, self._adopted = self._adopted, None
        if adopted is not None:
            await asyncio.to_thread(_terminate, adopted)
            state.forget_process(self.state_dir, self.name)
        process, self._process = self._process, None
        if process is None:
            return
        await terminate(process, STOP_TIMEOUT_SECONDS)
        state.forget_process(self.state_dir, self.name)

    def stop_restarting(self) -> None:
        """From now on a process that ends stays down (the twin is stopping: one started
        meanwhile, say during `fargo down`'s sweep, would outlive it)."""
        self.restarting = False

    async def keep_alive(
        self,
        respawn: Callable[[], Awaitable[None]],
        answers: Callable[[float], Awaitable[bool]] | None = None,
    ) -> None:
        """Forever: wait until the process ends — or, asked every second with ``answers``
        (``answers(timeout)``: whether it answered a query in time), has not answered for
        `HUNG_AFTER_SECONDS`, and kill it — then ``respawn()`` it (the owner starts it
        again on its sockets). Run by `keep` under `fargo.local.loops.keep_running`, which
        retries a failed respawn with back-off."""
        while True:
            pid = self.pid
            ended = asyncio.ensure_future(self._ended())
            hung = asyncio.ensure_future(self._until_hung(answers))
            try:
                await asyncio.wait({ended, hung}, return_when=asyncio.FIRST_COMPLETED)
                if not ended.done():  # it stopped answering: killed, it ends now
                    self._kill()
                how = await ended
            finally:
                for waiting in (ended, hung):
                    waiting.cancel()
            if hung.done() and not hung.cancelled():
                how = f"did not answer for {HUNG_AFTER_SECONDS:g} s; killed"
            if pid is not None or self.problem is None:  # keep why it first went down
                self.problem = f"{self.what}: pid {pid} {how}"
            if not self.restarting:
                logger.info("%s; not started again: the twin is stopping", self.problem)
                return
            logger.warning("%s; starting it again (log: %s)", self.problem, self.log_path)
            await respawn()
            self.restarts += 1
            self.problem = None
            logger.info("the %s process answers again (pid %s)", self.what, self.pid)

    @staticmethod
    async def _until_hung(answers: Callable[[float], Awaitable[bool]] | None) -> None:
        """Return once the process has left `HUNG_AFTER_SECONDS` of queries in a row
        unanswered (never, without ``answers``). Counted in queries, not by the clock: a
        control plane stopped a while (Ctrl-Z) and resumed must not blame the process."""
        loop = asyncio.get_running_loop()
        unanswered = 0
        while True:
            asked = loop.time()
            if answers is not None and await answers(PROBE_INTERVAL_SECONDS):
                unanswered = 0
            elif answers is not None:
                unanswered += 1
                if unanswered * PROBE_INTERVAL_SECONDS >= HUNG_AFTER_SECONDS:
                    return
            await asyncio.sleep(max(0.0, asked + PROBE_INTERVAL_SECONDS - loop.time()))

    def _kill(self) -> None:
        """SIGKILL the process (one that does not answer)."""
        with contextlib.suppress(ProcessLookupError, psutil.Error):
            if self._adopted is not None:
                self._adopted.kill()
            elif self._process is not None:
                self._process.kill()

    async def _ended(self) -> str:
        """Wait until the process is gone (at once if there is none); how it ended."""
        adopted = self._adopted
        if adopted is not None:
            await _gone(adopted)
            self._adopted = None
            state.forget_process(self.state_dir, self.name)
            return "ended"
        process = self._process
        if process is None:
            return "is not running"
        code = await process.wait()
        self._process = None
        state.forget_process(self.state_dir, self.name)
        return f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"

    async def _wait_ready(self, read_end: int) -> None:
        os.set_blocking(read_end, False)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        received = b""
        while True:
            with contextlib.suppress(BlockingIOError):
                chunk = os.read(read_end, len(READY))
                received += chunk
                if received == READY:
                    return
                if not chunk:  # the process closed the pipe without saying ready
                    break
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.01)
        tail = "\n".join(log_tail(self.log_path))
        raise DnsProcessError(
            f"the {self.what} process did not start within {START_TIMEOUT_SECONDS:g} s; "
            f"last lines of {self.log_path}:\n{tail}"
        )


async def answers_dns(client: socket.socket, host: str, port: int, timeout: float) -> bool:
    """Whether the DNS server at ``host:port`` answers a query from the UDP socket
    ``client`` (bound where it can reach the server) within ``timeout`` seconds."""
    query = dns.message.make_query(PROBE_NAME, "A")
    loop = asyncio.get_running_loop()
    client.setblocking(False)
    try:
        await loop.sock_sendto(client, query.to_wire(), (host, port))
        while True:
            data, _ = await asyncio.wait_for(loop.sock_recvfrom(client, 4096), timeout)
            with contextlib.suppress(dns.exception.DNSException):
                if dns.message.from_wire(data).id == query.id:
                    return True
    except (TimeoutError, OSError):
        return False


async def _gone(process: psutil.Process) -> None:
    """Wait until ``process`` (not our child) has ended: its pidfd becomes readable."""
    try:
        pidfd = os.pidfd_open(process.pid)
    except ProcessLookupError:
        return
    try:
        if not process.is_running():  # the pid was reused before the pidfd was opened
            return
        loop = asyncio.get_running_loop()
        ended = asyncio.Event()
        loop.add_reader(pidfd, ended.set)
        try:
            await ended.wait()
        finally:
            loop.remove_reader(pidfd)
    finally:
        os.close(pidfd)


def _terminate(process: psutil.Process) -> None:
    """SIGTERM, then SIGKILL after `STOP_TIMEOUT_SECONDS`: a process that is not our child."""
    with contextlib.suppress(psutil.Error):
        process.terminate()
        _, alive = psutil.wait_procs([process], timeout=STOP_TIMEOUT_SECONDS)
        for left in alive:
            left.kill()


def _environment() -> dict[str, str]:
    """This environment, with fargo importable however this process found it."""
    source = str(Path(fargo.__file__).resolve().parent.parent)
    paths = [source, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}
