"""This machine's cache of image environments and laid-out images, shared by every twin
of the current user.

    folder = environments_cache()    # ~/.cache/fargo/environments (made, and checked)
    layouts = cache_folder("layouts")  # `fargo.local.images.layouts`
    prune_unused(folder)             # entries no build asked for in 30 days: removed

An environment is keyed by what goes into it (`fargo.local.images.environment`), so a
new state folder, a second project or a test run with the same requirements finds it
made — as Docker's build cache serves every project on the machine. Where it is:
``$FARGO_CACHE_DIR``, else ``$XDG_CACHE_HOME/fargo``, else ``~/.cache/fargo``; for a user
without a writable home (``nobody``), ``<tmp>/fargo-<uid>/cache``.

A task runs from its environment, so the cache is trusted as the state folder is: it
must be the current user's and writable by no one else (`CacheError` says what to do).
Each build marks the environment it uses; one unused for `UNUSED_DAYS` is removed when
a new one is made, so the cache does not grow without bound.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path

from fargo.local.images.lock import try_build_lock
from fargo.local.twins import machine_uid

CACHE_VARIABLE = "FARGO_CACHE_DIR"
UNUSED_DAYS = 30
COMPLETE = ".complete"  # an environment's or a layout's marker: made in full; its mtime: last used
LOCK_SUFFIX = ".lock"


class CacheError(RuntimeError):
    """The cache folder cannot be used; the message says why and what to do."""


def cache_root() -> Path:
    """fargo's cache folder for the current user (not made here)."""
    if os.environ.get(CACHE_VARIABLE):
        return Path(os.environ[CACHE_VARIABLE]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "fargo"
    home = Path.home()
    if os.access(home, os.W_OK):
        return home / ".cache" / "fargo"
    # the machine's uid: a rootless VPC control plane is uid 0 in its own user namespace
    return Path(tempfile.gettempdir()) / f"fargo-{machine_uid()}" / "cache"


def environments_cache() -> Path:
    """The folder of image environments, made if missing (owner only) and checked."""
    return cache_folder("environments")


def cache_folder(name: str, *, root: Path | None = None) -> Path:
    """The cache's folder ``name`` (in ``root``: the user's cache, `cache_root`, when
    None), made if missing (owner only) and checked."""
    folder = (root or cache_root()) / name
    try:
        folder.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        folder.mkdir(exist_ok=True, mode=0o700)
    except OSError as err:
        raise CacheError(
            f"cannot make fargo's cache folder {folder}: {err.strerror or err}; set "
            f"{CACHE_VARIABLE} to a folder of your own"
        ) from None
    for path in (folder.parent, folder):
        _check_trusted(path)
    return folder


def read_private(name: str) -> str | None:
    """The text of the cache's file ``name``; None when it is missing or not the user's
    alone (it is not trusted then)."""
    path = cache_root() / name
    try:
        _check_trusted(path.parent)
        _check_trusted(path)
        return path.read_text()
    except (OSError, CacheError):
        return None


def write_private(name: str, text: str) -> None:
    """Write the cache's file ``name`` (owner only), whole or not at all."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    _check_trusted(root)
    fd, temporary = tempfile.mkstemp(dir=root, prefix=f".{name}.")
    try:
        with os.fdopen(fd, "w") as file:
            file.write(text)
        os.replace(temporary, root / name)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def mark_used(environment: Path) -> None:
    """Note that a build uses ``environment`` (or a layout) now: it is not pruned for
    `UNUSED_DAYS`."""
    with contextlib.suppress(OSError):
        os.utime(environment / COMPLETE)


def prune_unused(folder: Path, *, days: float = UNUSED_DAYS) -> list[Path]:
    """Remove the environments (or layouts) in ``folder`` no build used for ``days``; the
    ones removed. One being made or removed by another process (its lock held) is left
    alone."""
    cutoff = time.time() - days * 86400
    removed: list[Path] = []
    for marker in folder.glob(f"*/{COMPLETE}"):
        environment = marker.parent
        try:
            if marker.stat().st_mtime >= cutoff:
                continue
        except FileNotFoundError:
            continue
        lock = environment.with_name(environment.name + LOCK_SUFFIX)
        with contextlib.suppress(OSError), try_build_lock(lock) as held:
            if held and marker.is_file() and marker.stat().st_mtime < cutoff:
                marker.unlink()  # first: a half-removed environment is never taken as made
                shutil.rmtree(environment, ignore_errors=True)
                removed.append(environment)
    return removed


def _check_trusted(path: Path) -> None:
    status = path.lstat()
    if stat.S_ISLNK(status.st_mode):
        status = path.stat()
    if status.st_uid != os.geteuid() or status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise CacheError(
            f"fargo's cache folder {path} is not yours alone (owner uid {status.st_uid}, "
            f"mode {stat.S_IMODE(status.st_mode):o}): tasks run the environments and images "
            f"kept there, "
            f"so another user must not be able to write it. Remove it, or set "
            f"{CACHE_VARIABLE} to a folder of your own"
        )
