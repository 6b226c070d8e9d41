"""The twin's runtime settings, in one object: what `fargo up`'s options decide.

    config = TwinConfig(spec_path=Path("fargo.yaml"), state_dir=Path(".fargo"))
    config = TwinConfig(..., clock=TwinClock.aws(), network_mode="loopback",
                        published_ports={443: 9443, 80: 9080})

The spec says what runs; this says how this machine runs it. Parts of the twin take
the config (or the one field they need) instead of a growing list of keywords.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from fargo.local.clock import TwinClock

NETWORK_MODES = ("auto", "vpc", "loopback")
DEFAULT_NETWORK_MODE = "auto"  # VPC mode where the machine allows it, else loopback


class ConfigError(ValueError):
    """A setting of the twin is not usable; the message names the option."""


@dataclass(frozen=True)
class TwinConfig:
    """How this machine runs the spec."""

    spec_path: Path
    state_dir: Path
    clock: TwinClock = field(default_factory=TwinClock)
    network_mode: str = DEFAULT_NETWORK_MODE
    # listener port of the spec → the host port it is served on (`--publish 443:9443`)
    published_ports: Mapping[int, int] = field(default_factory=dict)
    network_note: str | None = None  # why "auto" chose loopback mode
    console_port: int = 0  # the console's port on 127.0.0.1 (`--console-port`); 0: any free one
    # public names the local CA may sign for the HTTPS listeners (`--ca-allow`)
    ca_allowed: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.network_mode not in NETWORK_MODES:
            raise ConfigError(
                f"--network {self.network_mode!r} is not a network mode; "
                f"choose one of: {', '.join(NETWORK_MODES)}"
            )
        for listener, host in self.published_ports.items():
            for what, port in (("listener", listener), ("host", host)):
                if not 1 <= port <= 65535:
                    raise ConfigError(f"--publish {listener}:{host}: {what} port out of range")
        if not 0 <= self.console_port <= 65535:
            raise ConfigError(f"--console-port {self.console_port}: out of range (0 to 65535)")
        hosts = list(self.published_ports.values())
        if len(set(hosts)) != len(hosts):
            raise ConfigError(f"--publish maps two listeners onto one host port: {hosts}")
        object.__setattr__(self, "spec_path", self.spec_path.resolve())
        object.__setattr__(self, "state_dir", self.state_dir.resolve())
        object.__setattr__(self, "published_ports", MappingProxyType(dict(self.published_ports)))

    @property
    def time_scale(self) -> float:
        return self.clock.time_scale


def parse_published_port(text: str) -> tuple[int, int]:
    """``"443:9443"`` → ``(443, 9443)``: the spec's listener port and the host port."""
    listener, sep, host = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return int(listener), int(host)
    except ValueError:
        raise ConfigError(
            f"--publish {text!r}: expected LISTENER_PORT:HOST_PORT, e.g. 443:9443"
        ) from None
