"""Errors about the twin's state folder; each message says why and what to do."""

from __future__ import annotations

from pathlib import Path


class StateDirError(RuntimeError):
    """The state folder cannot be used; the message says why and what to do."""


class StateLocked(StateDirError):
    """Another control plane holds this state folder."""

    def __init__(self, state_dir: Path, pid: int | None) -> None:
        holder = f" (control plane pid {pid})" if pid else ""
        super().__init__(
            f"a twin is already up for {state_dir}{holder}; run `fargo down` first "
            "or choose another --state-dir"
        )
        self.pid = pid
