"""The control plane process: ``fargo up`` runs it in the foreground, ``--detach`` behind.

python -m fargo.local.daemon --spec fargo.yaml --state-dir .fargo [--time-scale 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from fargo.local import state
from fargo.local.control import ControlServer
from fargo.local.runtime import Runtime, StartError
from fargo.spec import SpecError, load_spec
from fargo.spec.defaults import LOCAL_TIME_SCALE as DEFAULT_TIME_SCALE

EXIT_START_FAILED = 3


class AlreadyRunning(RuntimeError):
    pass


def stamp(line: str) -> str:
    return f"{datetime.now(UTC).strftime('%H:%M:%S.%f')[:-3]} {line}"


async def serve(
    spec_path: Path,
    state_dir: Path,
    *,
    time_scale: float,
    on_ready: Callable[[Runtime], None] = lambda runtime: None,
    log: Callable[[str], None] = lambda line: print(stamp(line), flush=True),
) -> int:
    """Run the twin until SIGINT/SIGTERM or ``POST /down``; stop everything on the way out."""
    spec = load_spec(spec_path)
    state.prepare(state_dir)
    running = state.control_plane(state_dir)
    if running is not None and running.pid != os.getpid():
        raise AlreadyRunning(
            f"a twin is already up for {state_dir} (control plane pid {running.pid}); "
            "run `fargo down` first"
        )
    state.sweep(state_dir)  # leftovers of a control plane that was killed
    state.record_process(state_dir, "control-plane", os.getpid(), "control plane")
    shutdown = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, shutdown.set)
    runtime = Runtime(
        spec, spec_path=spec_path, state_dir=state_dir, time_scale=time_scale, log=log
    )
    control = ControlServer(runtime, state.control_socket(state_dir), shutdown)
    try:
        await control.start()
        log(f"starting the twin of {spec_path} (state in {state_dir})")
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
        if ready.done():
            answer = ready.result()
            if answer["ready"]:
                on_ready(runtime)
            else:
                log(f"not ready: {answer['failure']}")
        await stop_wait
        log("stopping")
        return 0
    except StartError as err:
        log(f"start failed: {err}")
        return EXIT_START_FAILED
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await runtime.stop()
        await control.stop()
        state.forget_process(state_dir, "control-plane")
        state.sweep(state_dir)
        log("stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fargo.local.daemon")
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--time-scale", type=float, default=DEFAULT_TIME_SCALE)
    args = parser.parse_args(argv)
    try:
        return asyncio.run(serve(args.spec, args.state_dir.resolve(), time_scale=args.time_scale))
    except (SpecError, AlreadyRunning) as err:
        print(stamp(str(err)), file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
