"""``fargo build [NAME…]``: build the spec's images as the twin runs them, on their own.

NAME is an image of the spec (``images:``) or a service (its image); none: every image.
Each line says what happened (built, and how long it took, or up to date); what the
twin does not honour of a Dockerfile is printed with its file and line. ``fargo up``
builds the same way first, so it starts with every image up to date.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TextIO

from fargo.local.ecr.registry import LocalRegistry, RegistryError
from fargo.local.state import folder as state
from fargo.spec import Spec, SpecError, load_spec


class UnknownName(LookupError):
    """A name that is neither an image nor a service of the spec."""


def images_named(spec: Spec, names: list[str]) -> list[str]:
    """The images ``names`` stand for (an image's own name or a service's), in spec order."""
    if not names:
        return list(spec.images)
    wanted: set[str] = set()
    for name in names:
        if name in spec.images:
            wanted.add(name)
        elif name in spec.services:
            wanted.add(spec.services[name].image)
        else:
            raise UnknownName(
                f"{name!r} is neither an image ({', '.join(spec.images)}) nor a service "
                f"({', '.join(spec.services)}) of the spec"
            )
    return [name for name in spec.images if name in wanted]


def build_images(
    spec: Spec,
    spec_path: Path,
    state_dir: Path,
    names: list[str],
    out: TextIO,
    *,
    warn_when_up_to_date: bool = True,
) -> bool:
    """Build the images ``names`` stand for into ``state_dir``'s registry, reporting on
    ``out``; False (after the failing image's message) when one fails. An image that was
    up to date has its warnings counted only, unless ``warn_when_up_to_date``."""
    state.prepare(state_dir)
    registry = LocalRegistry(state_dir / "registry", spec_path.parent)
    for name in images_named(spec, names):
        started = time.perf_counter()
        print(f"building image {name} …", file=out, flush=True)
        try:
            image = registry.push(name, spec.images[name])
        except RegistryError as err:
            print(f"fargo build: {err}", file=out, flush=True)
            return False
        quiet = image.cached and not warn_when_up_to_date
        for note in () if quiet else image.notes:
            print(f"  warning: {_relative(note)}", file=out)
        seconds = time.perf_counter() - started
        verdict = "up to date" if image.cached else "built"
        counted = (
            f", {len(image.notes)} warnings: fargo build {name}" if quiet and image.notes else ""
        )
        print(
            f"image {name}: {verdict} in {seconds:.2f} s ({image.tag}{counted})",
            file=out,
            flush=True,
        )
    return True


def _relative(note: str) -> str:
    """A note's Dockerfile path relative to the working directory when it is below it."""
    prefix = str(Path.cwd()) + os.sep
    return note[len(prefix) :] if note.startswith(prefix) else note


def build_command(args: argparse.Namespace) -> int:
    try:
        spec = load_spec(args.file)
        ok = build_images(spec, Path(args.file), args.state_dir, list(args.names), sys.stdout)
    except (SpecError, UnknownName, state.StateDirError) as err:
        print(f"fargo build: {err}", file=sys.stderr)
        return 2
    return 0 if ok else 1
