"""``fargo watch`` and ``fargo up --watch``: a saved change is a deployment.

A change under an image's build context that changes what its Dockerfile reads (the
digest `fargo deploy` tags images with, `fargo.build_context.image_tag`: an editor's
swap file, ``__pycache__`` or a path ``.dockerignore`` leaves out changes nothing)
rebuilds that image and rolls every service that uses it, all at once, each a rolling
deployment within its minimum and maximum percent (``fargo update-service``). A change
of the spec file, or of an ``env_file`` it names, is applied as a diff (``fargo up`` on a
running twin, `fargo.local.cli.apply.apply_spec`). What changes while deployments run is
taken in the next round.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

import watchfiles

from fargo.build_context import image_tag
from fargo.local.control.client import ControlClient
from fargo.local.state import folder as state
from fargo.spec import Spec, SpecError, load_spec

DEBOUNCE_MS = 150  # editors save in bursts (a temporary file, a rename)
SPEC_POLL_MS = 300  # the spec file is looked at this often (editors replace the file)
DEPLOYMENT_TIMEOUT_SECONDS = 600.0


def watch_command(args: argparse.Namespace) -> int:
    state_dir = args.state_dir.resolve()
    if state.control_plane(state_dir) is None:
        print(
            f"fargo watch: no twin runs in {state_dir} (start one with `fargo up -d`, or "
            "`fargo up --watch`)",
            file=sys.stderr,
        )
        return 1
    return Watcher(args.file.resolve(), state_dir, sys.stdout).run()


class Watcher:
    """Watches the spec and every image's build context; deploys what changed."""

    def __init__(self, spec_path: Path, state_dir: Path, out: TextIO) -> None:
        self.spec_path = spec_path
        self.state_dir = state_dir
        self.out = out
        self.client = ControlClient(
            state.control_socket(state_dir), timeout=DEPLOYMENT_TIMEOUT_SECONDS
        )

    def run(self, stop: threading.Event | None = None) -> int:
        """Until ``stop`` is set or Ctrl-C; the exit status."""
        try:
            spec = load_spec(self.spec_path)
        except SpecError as err:
            print(err, file=sys.stderr)
            return 1
        digests = self._digests(spec)
        seen = self._spec_inputs(spec)
        # The state folder's logs change all the time; the default filter leaves out
        # .git, .venv, __pycache__, editors' swap files and the like.
        quiet = watchfiles.DefaultFilter(ignore_paths=[self.state_dir])
        while stop is None or not stop.is_set():
            contexts = self._contexts(spec)
            self._say(f"watching {self.spec_path.name} and {len(contexts)} build context(s)")
            for changes in watchfiles.watch(
                *(contexts or [self.spec_path.parent]),
                recursive=bool(contexts),  # no context: only the spec's own folder
                watch_filter=quiet,
                debounce=DEBOUNCE_MS,
                rust_timeout=SPEC_POLL_MS,
                yield_on_timeout=True,
                stop_event=stop,
                raise_interrupt=False,
            ):
                current = self._spec_inputs(spec)
                if current != seen:
                    spec, digests, moved = self._spec_changed(spec, digests)
                    # What was read before applying is what was applied: an edit saved while
                    # it applied is another change, applied next (a file the new spec names
                    # first, e.g. an env_file, is read once more).
                    seen = {path: current.get(path) for path in self._spec_inputs(spec)}
                    if moved:
                        break  # other build contexts: watch those
                    continue
                if changes:
                    digests = self._deploy_changed(spec, digests)
            else:
                return 0  # stopped (or Ctrl-C)
        return 0

    def _spec_changed(
        self, spec: Spec, digests: dict[str, str]
    ) -> tuple[Spec, dict[str, str], bool]:
        from fargo.local.cli.apply import apply_spec

        self._say(f"{self.spec_path.name} changed: applying it")
        apply_spec(self.state_dir, self.out)
        try:
            new = load_spec(self.spec_path)
        except SpecError:
            return spec, digests, False  # apply_spec said what is wrong
        return new, self._digests(new), self._contexts(new) != self._contexts(spec)

    def _deploy_changed(self, spec: Spec, digests: dict[str, str]) -> dict[str, str]:
        now = self._digests(spec)
        images = sorted(name for name, digest in now.items() if digests.get(name) != digest)
        services = [n for n, s in spec.services.items() if s.image in images]
        if not services:
            return now
        self._say(
            f"image{'s' if len(images) > 1 else ''} {', '.join(images)} changed: "
            f"rolling out {', '.join(services)}"
        )
        started = time.monotonic()
        results = asyncio.run(self._roll(services))
        for service, result in zip(services, results, strict=True):
            if isinstance(result, BaseException):
                self._say(f"{service}: {result}")
                continue
            verdict = "completed" if result["completed"] else "rolled back"
            self._say(
                f"{service}: revision {result['revision']} {verdict} in "
                f"{time.monotonic() - started:.1f} s"
            )
        return now

    async def _roll(self, services: Iterable[str]) -> list[Any]:
        calls = [
            self.client.post(f"/deployments/{name}", timeout=DEPLOYMENT_TIMEOUT_SECONDS)
            for name in services
        ]
        return await asyncio.gather(*calls, return_exceptions=True)

    def _digests(self, spec: Spec) -> dict[str, str]:
        """Each image's build inputs, as a digest (an image whose Dockerfile does not parse
        has none: it is built, and fails, when a service needs it)."""
        digests = {}
        for name, image in spec.images.items():
            context = self.spec_path.parent / image.context
            try:
                digests[name] = image_tag(context, context / image.dockerfile)
            except (OSError, ValueError) as err:
                digests[name] = f"unreadable: {err}"
        return digests

    def _spec_inputs(self, spec: Spec) -> dict[Path, tuple[int, int] | None]:
        """What the spec is read from, the file and the services' env files, as they are."""
        files = [self.spec_path] + [
            self.spec_path.parent / name for s in spec.services.values() for name in s.env_file
        ]
        return {path: _stat(path) for path in files}

    def _contexts(self, spec: Spec) -> list[Path]:
        contexts = {
            (self.spec_path.parent / image.context).resolve() for image in spec.images.values()
        }
        return sorted(p for p in contexts if p.is_dir())

    def _say(self, message: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} watch: {message}", file=self.out, flush=True)


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size
