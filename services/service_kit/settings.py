"""Reading the environment contract, with errors that say what to fix.

Every service reads its settings once at start-up; a bad value stops the
process with a message naming the variable, the value and what was expected.
"""

from __future__ import annotations

import math
from collections.abc import Mapping


class SettingError(ValueError):
    """An environment variable holds a value the service cannot use."""


def env_float(environ: Mapping[str, str], name: str, default: float) -> float:
    """A positive number of seconds from ``environ[name]``, or ``default``."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise SettingError(f"{name}={raw!r}: expected a number of seconds greater than 0")
    return value


def env_port(environ: Mapping[str, str], name: str, default: int) -> int:
    """A TCP port number from ``environ[name]``, or ``default``."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise SettingError(f"{name}={raw!r}: expected a TCP port number between 1 and 65535")
    return int(raw)


def env_whole_seconds(environ: Mapping[str, str], name: str, default: int) -> int:
    """A whole number of seconds, at least 1, from ``environ[name]``, or ``default``."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise SettingError(f"{name}={raw!r}: expected a whole number of seconds, at least 1")
    return int(raw)
