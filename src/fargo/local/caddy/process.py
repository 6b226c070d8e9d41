"""One supervised Caddy process: the twin's load balancer data plane.

    caddy = CaddyProcess(state_dir)
    await caddy.start()                 # `caddy run`, admin API on a unix socket
    await caddy.load({"apps": {...}})   # POST /load: graceful, in-flight requests finish
    await caddy.upstreams()             # [{"address": "127.0.1.2:8090", "num_requests": 0, ...}]
    await caddy.stop()                  # SIGTERM, then SIGKILL; idempotent

Everything Caddy keeps lives in the state folder: ``caddy/bootstrap.json`` (what it
starts with), ``caddy/config.json`` (the last config loaded, also what a restart
starts with), ``caddy/admin.sock`` (the admin API, owner only: the folder is 0700
and the socket 0600), Caddy's data and config homes under ``caddy/``, its log in
``logs/caddy.log``, and its pid in ``pids/caddy.json`` so `fargo down` can stop it
when the control plane is gone.

A watchdog restarts Caddy with the last loaded config when it dies, or when its admin
API has not answered for `HANG_SECONDS` (stopped with SIGSTOP, deadlocked: it is
SIGKILLed first). The listeners' sockets are held here too, so a connection made
meanwhile waits in its queue for the next Caddy instead of being refused. A restart
that fails (its log folder read-only, a binary gone) is retried with back-off for as
long as the twin runs; each cause is logged once, not at every attempt. `restarts`
counts relaunches, `problem` says why Caddy is not serving while it is not.

Caddy runs with its open-file soft limit at the hard limit (`fargo.local.limits`), also
after a restart. `start` refuses a Caddy older than the twin needs, and Caddy gets an
allowlisted environment, not the user's (`fargo.local.caddy.binary`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fargo.local.caddy.access_log import ACCESS_LOGGER
from fargo.local.caddy.admin import CaddyAdmin, socket_path_fits
from fargo.local.caddy.binary import (
    CaddyError,
    CaddyTooOld,
    caddy_environment,
    caddy_executable,
    caddy_version,
    check_version,
)
from fargo.local.child_processes import terminate
from fargo.local.events import about
from fargo.local.limits import raise_open_files
from fargo.local.loops import cancel_and_wait, keep_running
from fargo.local.state import folder as state
from fargo.local.state.files import log_tail, write_atomically

# Defined with the binary checks and the admin client; part of this module's API.
__all__ = ["CaddyError", "CaddyProcess", "CaddyTooOld", "socket_path_fits"]

logger = logging.getLogger(__name__)
# How a Caddy's process record describes it: "<name> (load balancers)".
RECORD_SUFFIX = " (load balancers)"
DATA_PLANE = about("load-balancer", "data plane")

ADMIN_SOCKET = "admin.sock"
BOOTSTRAP_FILE = "bootstrap.json"
CONFIG_FILE = "config.json"
PROCESS_NAME = "caddy"
START_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 5.0
LOG_TAIL_LINES = 20
# Restart backoff when Caddy keeps dying: doubles from the first to the last value.
RESTART_DELAY_SECONDS = (0.1, 5.0)
# A Caddy up this long is healthy again: back-off and told causes start afresh.
HEALTHY_RUN_SECONDS = 10 * RESTART_DELAY_SECONDS[1]
# Liveness: the admin API is asked every second; a Caddy silent for HANG_SECONDS is killed.
PROBE_INTERVAL_SECONDS = 1.0
PROBE_TIMEOUT_SECONDS = 1.0
HANG_SECONDS = 5.0


class CaddyProcess:
    """Supervises ``caddy run``; its admin API is reached over a unix socket only."""

    def __init__(
        self,
        state_dir: Path,
        *,
        executable: Path | None = None,
        name: str = PROCESS_NAME,
        command_prefix: Callable[[], Sequence[str]] = tuple,
    ) -> None:
        self.state_dir = state_dir
        self.name = name  # its folder, log and pid record: several Caddys share a state folder
        self.command_prefix = command_prefix  # e.g. nsenter into a load balancer's ENI
        self.directory = state_dir / name
        self.admin_socket = self.directory / ADMIN_SOCKET
        self.log_path = state_dir / "logs" / f"{name}.log"
        self.restarts = 0  # relaunches after Caddy exited or hung
        self.failed_restarts = 0  # relaunch attempts that failed (each retried)
        self.loads = 0  # configs loaded
        self._executable = executable
        self._process: asyncio.subprocess.Process | None = None
        self._admin = CaddyAdmin(self.admin_socket)
        self._watchdog: asyncio.Task[None] | None = None
        self._config: dict[str, Any] | None = None
        self._inherit: list[socket.socket] = []
        self._stopping = False
        self._launched_at = 0.0
        self._delay = RESTART_DELAY_SECONDS[0]
        self._problem: str | None = None  # why Caddy is not serving, while it is not
        self._told: set[str] = set()  # causes of failure logged in this row of failures
        self._lock = asyncio.Lock()
        self._version_checked = False

    @property
    def pid(self) -> int | None:
        """The pid of the running Caddy, or None."""
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    @property
    def problem(self) -> str | None:
        """Why Caddy is not serving now (exited, not answering, cannot be restarted), or None.

        E.g. ``has not answered its admin API for 3 s`` (the subject is Caddy).
        """
        return self._problem

    @property
    def config(self) -> dict[str, Any] | None:
        """The last config loaded (with the admin and logging parts this class adds)."""
        return self._config

    async def start(self, inherit: Sequence[socket.socket] = ()) -> None:
        """Start Caddy and wait until its admin API answers; on failure raise `CaddyError`.

        ``inherit``: listening sockets Caddy gets as file descriptors (a config uses them
        as ``fd/<fileno>``), also after a restart. The caller keeps them open.
        """
        if self._process is not None:
            return
        self._stopping = False
        self._inherit = list(inherit)
        try:
            if not self._version_checked:
                await check_version(self._binary())
                self._version_checked = True
            self._prepare()
            self._admin.open()
            await self._launch(self.directory / BOOTSTRAP_FILE)
        except BaseException:
            await self.stop()
            raise
        self._watchdog = keep_running("caddy watchdog", self._watch, extra=DATA_PLANE)

    async def load(self, config: dict[str, Any]) -> None:
        """Replace Caddy's config (``POST /load``); the admin endpoint and logging stay ours.

        Caddy swaps configs gracefully: new requests see the new routes at once, requests
        in flight finish on the old ones.
        """
        bootstrap = self._bootstrap()
        full = {**config, **bootstrap}
        # The config's own logs (the load balancers' access logs) next to Caddy's log.
        logs = {**config.get("logging", {}).get("logs", {}), **bootstrap["logging"]["logs"]}
        full["logging"] = {**bootstrap["logging"], "logs": logs}
        body = json.dumps(full).encode()
        async with self._lock:
            await self._admin.request("POST", "/load", body)
            self.loads += 1
            self._config = full
            write_atomically(self.directory / CONFIG_FILE, body)

    async def upstreams(self) -> list[dict[str, Any]]:
        """``GET /reverse_proxy/upstreams``: address, ``num_requests`` in flight, ``fails``.

        Upstreams that left the config stay listed while requests to them are in flight.
        """
        answer = await self._admin.request("GET", "/reverse_proxy/upstreams")
        return list(answer or [])

    async def stop(self, *, drain: bool = True) -> None:
        """Stop Caddy (SIGTERM, then SIGKILL after 5 s); idempotent, safe after a failed start.

        Stopping, Caddy answers on its keep-alive connections for its config's
        ``shutdown_delay`` more (`fargo.local.caddy.config`), so that their clients move to
        the Caddy that takes over. ``drain=False``: none does (the load balancers go away),
        so that delay is loaded away first.
        """
        if not drain:
            await self._load_without_shutdown_delay()
        self._stopping = True
        watchdog, self._watchdog = self._watchdog, None
        await cancel_and_wait(watchdog)
        await self._terminate()
        await self._admin.close()
        self._problem = None

    def stop_restarting(self) -> None:
        """From now on the watchdog restarts nothing: the twin is stopping, and a Caddy
        started meanwhile would outlive it."""
        self._stopping = True
        if self._watchdog is not None:
            self._watchdog.cancel()  # `stop` awaits it

    async def _load_without_shutdown_delay(self) -> None:
        config = self._config
        apps = config.get("apps", {}) if config is not None else {}
        if config is None or self.pid is None or "shutdown_delay" not in apps.get("http", {}):
            return
        http = {k: v for k, v in apps["http"].items() if k != "shutdown_delay"}
        body = json.dumps({**config, "apps": {**apps, "http": http}}).encode()
        # The same listeners: Caddy stops the old servers at once (no delay applies).
        with contextlib.suppress(CaddyError, OSError, TimeoutError):
            async with self._lock, asyncio.timeout(STOP_TIMEOUT_SECONDS):
                await self._admin.request("POST", "/load", body)

    async def version(self) -> str:
        """``caddy version`` of the binary, e.g. ``v2.11.7 h1:...``."""
        return await caddy_version(self._binary())

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return "\n".join(log_tail(self.log_path, lines))

    # -- process --------------------------------------------------------------------------

    def _binary(self) -> Path:
        if self._executable is None:
            self._executable = caddy_executable()
        return self._executable

    def _prepare(self) -> None:
        if not socket_path_fits(self.admin_socket):
            raise CaddyError(
                f"the state folder path is too long for a unix socket ({self.admin_socket}); "
                "use a shorter state folder"
            )
        for directory in (self.directory, self.log_path.parent):
            directory.mkdir(parents=True, exist_ok=True)
            os.chmod(directory, 0o700)
        self._kill_leftover()
        self.admin_socket.unlink(missing_ok=True)
        write_atomically(self.directory / BOOTSTRAP_FILE, json.dumps(self._bootstrap()).encode())

    def _bootstrap(self) -> dict[str, Any]:
        return {
            "admin": {
                "listen": f"unix/{self.admin_socket}|0600",
                "config": {"persist": False},
            },
            # Caddy's own log goes to stderr, which is the log file (with any panic). Admin
            # requests are left out: draining polls the upstreams many times a second.
            # Access logs have logs of their own (`fargo.local.caddy.access_log`).
            "logging": {
                "logs": {"default": {"level": "INFO", "exclude": ["admin.api", ACCESS_LOGGER]}}
            },
        }

    async def _launch(self, config_file: Path) -> None:
        env = caddy_environment(self.directory)
        with self.log_path.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                *self.command_prefix(),
                str(self._binary()),
                "run",
                "--config",
                str(config_file),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                cwd=str(self.directory),
                pass_fds=[sock.fileno() for sock in self._inherit],
                # Its own session: a terminal's Ctrl-C reaches the control plane, which stops it.
                start_new_session=True,
            )
        self._launched_at = time.monotonic()
        state.record_process(
            self.state_dir, self.name, self._process.pid, f"{self.name}{RECORD_SUFFIX}"
        )
        await self._wait_ready()
        # Once Go's runtime has started (it sets the soft limit itself at start-up):
        # connections held open on one listener must not starve the others.
        raise_open_files(self._process.pid)

    async def _wait_ready(self) -> None:
        process = self._process
        assert process is not None
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            if process.returncode is not None:
                raise CaddyError(
                    f"caddy exited with status {process.returncode} while starting; "
                    f"last lines of {self.log_path}:\n{self.log_tail()}"
                )
            if self.admin_socket.exists():
                try:
                    await self._admin.request("GET", "/config/")
                    return
                except CaddyError:
                    pass
            if time.monotonic() > deadline:
                raise CaddyError(
                    f"caddy did not answer on {self.admin_socket} "
                    f"within {START_TIMEOUT_SECONDS:g} s; "
                    f"last lines of {self.log_path}:\n{self.log_tail()}"
                )
            await asyncio.sleep(0.02)

    async def _watch(self) -> None:
        """Restart Caddy whenever it exits or stops answering; never gives up on it."""
        while not self._stopping:
            process = self._process
            cause = await self._trouble(process) if process is not None else "is not running"
            if self._stopping:
                return
            self._problem = cause
            # A Caddy that keeps dying soon after start is restarted ever more slowly, and
            # each cause is told once in a row of failures, not at every attempt.
            if time.monotonic() - self._launched_at > HEALTHY_RUN_SECONDS:
                self._delay = RESTART_DELAY_SECONDS[0]
                self._told.clear()
            pid = process.pid if process is not None else None
            self._tell(cause, f"caddy (pid {pid}) {cause}; restarting", logging.WARNING)
            await self._relaunch()

    async def _trouble(self, process: asyncio.subprocess.Process) -> str:
        """Wait until ``process`` exits or has not answered its admin API for `HANG_SECONDS`
        (then kill it); what happened. Meanwhile `problem` says when it is not answering."""
        exited = asyncio.ensure_future(process.wait())
        answered = time.monotonic()
        try:
            while True:
                await asyncio.wait({exited}, timeout=PROBE_INTERVAL_SECONDS)
                if exited.done():
                    return f"exited with status {exited.result()}"
                if await self._answers():
                    answered = time.monotonic()
                    self._problem = None
                    continue
                silent = time.monotonic() - answered
                if silent < HANG_SECONDS:
                    self._problem = f"has not answered its admin API for {silent:.0f} s"
                    continue
                # Stopped (SIGSTOP) or deadlocked: SIGKILL works on both; its listening
                # sockets stay open here, so connections wait in their queue for the next.
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await exited
                return f"did not answer its admin API for {HANG_SECONDS:g} s and was killed"
        finally:
            exited.cancel()

    async def _answers(self) -> bool:
        """Whether Caddy answers a request that takes none of its config locks in time."""
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
                await self._admin.request("GET", "/reverse_proxy/upstreams")
            return True
        except (CaddyError, TimeoutError):
            return False

    async def _relaunch(self) -> None:
        """Launch Caddy again with the last loaded config, retrying with back-off until it
        runs (or `stop`); a failure's cause is told once, not at every attempt."""
        failures = 0
        while not self._stopping:
            await asyncio.sleep(self._delay)
            self._delay = min(self._delay * 2, RESTART_DELAY_SECONDS[1])
            config = self.directory / (CONFIG_FILE if self._config is not None else BOOTSTRAP_FILE)
            try:
                self.admin_socket.unlink(missing_ok=True)
                await self._launch(config)
            except Exception as err:  # any of them: the next attempt may succeed
                failures += 1
                self.failed_restarts += 1
                cause = _cause(err)
                self._problem = f"could not be restarted: {cause}; retrying"
                self._tell(cause, f"restarting caddy failed: {err}; retrying", logging.ERROR)
                await self._kill_unready()
                continue
            self.restarts += 1
            self._problem = None
            if failures:
                logger.warning(
                    "caddy restarted (pid %s) after %d failed attempts",
                    self.pid,
                    failures,
                    extra=DATA_PLANE,
                )
            return

    def _tell(self, cause: str, message: str, level: int) -> None:
        if cause not in self._told:
            self._told.add(cause)
            logger.log(level, "%s", message, extra=DATA_PLANE)

    async def _kill_unready(self) -> None:
        """Kill a Caddy that was launched but did not become ready."""
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    async def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            await terminate(process, STOP_TIMEOUT_SECONDS)
            state.forget_process(self.state_dir, self.name)
        self.admin_socket.unlink(missing_ok=True)

    def _kill_leftover(self) -> None:
        """Stop a Caddy a killed control plane left running on this state folder."""
        for record in state.recorded_processes(self.state_dir):
            if record.path.stem == self.name and record.alive():
                logger.warning("stopping a leftover caddy (pid %s)", record.pid)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(record.pid, signal.SIGKILL)
            if record.path.stem == self.name:
                record.path.unlink(missing_ok=True)


def _cause(err: BaseException) -> str:
    """What went wrong, the same at each attempt that fails the same way (no pid, no log)."""
    if isinstance(err, OSError) and err.strerror:
        where = f": {err.filename}" if err.filename else ""
        return f"{err.strerror}{where}"
    return str(err).splitlines()[0] if str(err) else type(err).__name__
