"""The control plane: ``fargo up`` serves in the foreground, ``--detach`` forks it behind
(`fargo.local.control.detach`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from fargo.local.config import ConfigError, TwinConfig
from fargo.local.control.api import ControlServer
from fargo.local.control.detach import EXIT_ALREADY_RUNNING, EXIT_START_FAILED
from fargo.local.control.handover import PreviousRun
from fargo.local.ec2.modes import enter_network_mode
from fargo.local.events import configure_logging, remove_handlers
from fargo.local.runtime import Runtime, StartError
from fargo.local.state import folder as state
from fargo.spec import Spec, SpecError, load_spec

logger = logging.getLogger(__name__)


class AlreadyRunning(RuntimeError):
    """Another control plane holds the state folder; the message names its pid."""


def stamp(line: str) -> str:
    return f"{datetime.now(UTC).strftime('%H:%M:%S.%f')[:-3]} {line}"


async def serve(
    config: TwinConfig,
    *,
    on_ready: Callable[[Runtime], None] = lambda runtime: None,
) -> int:
    """Run the twin until SIGINT/SIGTERM or ``POST /down``; stop everything on the way out.

    The state folder's lock is held throughout, so a second control plane on the same
    folder fails with `AlreadyRunning` before it touches anything of the first.
    Raises `state.StateDirError` if the folder cannot be used. Events go to the state
    folder's ``events.jsonl`` and, timestamped, to standard output.
    """
    spec = load_spec(config.spec_path)
    state.prepare(config.state_dir)
    try:
        with state.exclusive_lock(config.state_dir):
            handlers = configure_logging(config.state_dir, console=sys.stdout)
            try:
                return await _serve_locked(spec, config, on_ready=on_ready)
            finally:
                remove_handlers(handlers)
    except state.StateLocked as err:  # only the lock raises it: nothing of the holder touched
        raise AlreadyRunning(str(err)) from None


async def _serve_locked(
    spec: Spec,
    config: TwinConfig,
    *,
    on_ready: Callable[[Runtime], None],
) -> int:
    state_dir = config.state_dir
    (state_dir / state.PREVIOUS_RUN).unlink(missing_ok=True)
    # What a control plane that was killed left: its data plane still serving is taken
    # over, everything else stopped (its namespaces, in VPC mode, go too).
    previous = PreviousRun.find(state_dir, config.network_mode)
    if previous is not None:
        previous.set_aside()
    else:
        _sweep_crashed_run(state_dir)
    state.record_process(state_dir, "control-plane", os.getpid(), "control plane")
    shutdown = asyncio.Event()
    loop = asyncio.get_running_loop()

    def stop_requested(sig: signal.Signals) -> None:
        # The handlers stay installed while stopping: a second Ctrl-C must not interrupt
        # the shutdown half-way (tasks and Caddy run in sessions of their own and would
        # be orphaned).
        if shutdown.is_set():
            logger.info(
                "%s again: already stopping, every process the twin started is stopped", sig.name
            )
        shutdown.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop_requested, sig)
    runtime = Runtime(spec, config)
    if previous is not None:
        if runtime.adopt(previous.listening, previous.caddy_folders):
            _say(
                state_dir,
                "the previous control plane had stopped without `fargo down`; its data plane "
                "kept serving and is taken over without a refused connection: "
                f"{', '.join(previous.describe())} ({_replaced(config.network_mode)})",
            )
        else:
            previous = None
            _sweep_crashed_run(state_dir)
    retiring: asyncio.Task[None] | None = None
    control = ControlServer(runtime, state.control_socket(state_dir), shutdown)
    try:
        await control.start()
        logger.info(
            "starting the twin of %s (state in %s, %s mode)",
            config.spec_path,
            state_dir,
            config.network_mode,
        )
        if config.network_note:
            logger.warning("%s", config.network_note)
        start = asyncio.create_task(runtime.start())
        stop_wait = asyncio.create_task(shutdown.wait())
        await asyncio.wait({start, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        if not start.done():
            start.cancel()
            with contextlib.suppress(asyncio.CancelledError, StartError):
                await start
            return 130
        start.result()
        ready = asyncio.create_task(runtime.wait_ready())
        await asyncio.wait({ready, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            ready.cancel()
        else:
            answer = ready.result()
            if answer.ready:
                if previous is not None:
                    retiring = asyncio.create_task(
                        previous.retire(
                            runtime.take_over_adopted,
                            runtime.adopted_linger_seconds(),
                            first=runtime.adopted_caddys,
                        )
                    )
                on_ready(runtime)
            else:
                logger.error("not ready: %s", answer.failure)
        await stop_wait
        logger.info("stopping")
        return 0
    except StartError as err:
        logger.error("start failed: %s", err)
        return EXIT_START_FAILED
    finally:
        try:
            try:
                if retiring is not None:
                    retiring.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await retiring
                if previous is not None:
                    await previous.stop()
                await runtime.stop()
            finally:
                await control.stop()
        finally:
            # Whatever happened above, no recorded process outlives the control plane.
            state.forget_process(state_dir, "control-plane")
            state.sweep(state_dir)
            state.remove_set_aside(state_dir)
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            logger.info("stopped")


def _replaced(network_mode: str) -> str:
    if network_mode == "vpc":
        return (
            "a new VPC starts beside it; the old VPC, its Caddys and tasks stop once the new "
            "tasks are healthy"
        )
    return "its Caddy and tasks are replaced once the new tasks are healthy"


def _sweep_crashed_run(state_dir: Path) -> None:
    # every record but this control plane's own (recorded once it took the folder)
    swept = state.sweep(state_dir, only=lambda record: record.pid != os.getpid())
    state.remove_set_aside(state_dir)
    if swept:
        _say(
            state_dir,
            "the previous control plane had stopped without `fargo down`; stopped what its "
            f"crashed run left running: {', '.join(swept)}",
        )


def _say(state_dir: Path, line: str) -> None:
    """Log what became of a crashed run, and keep it for `fargo up --detach` to print."""
    logger.warning("%s", line)
    with contextlib.suppress(OSError):
        (state_dir / state.PREVIOUS_RUN).write_text(line + "\n")


def run(config: TwinConfig) -> int:
    """The control plane of a detached twin, until it is stopped; its exit code."""
    try:
        enter_network_mode(config)  # before asyncio starts a thread
        return asyncio.run(serve(config))
    except ConfigError as err:
        print(stamp(str(err)), file=sys.stderr, flush=True)
        return 2
    except AlreadyRunning as err:
        print(stamp(str(err)), file=sys.stderr, flush=True)
        return EXIT_ALREADY_RUNNING
    except (SpecError, state.StateDirError) as err:
        print(stamp(str(err)), file=sys.stderr, flush=True)
        return 1
