"""The twins running on this machine, so a second one can be told what it clashes with.

    register(config, spec, host_ports)  # at start; the entry goes when the process does
    clashes(config, spec)               # ["VPC 10.0.0.0/16 overlaps twin 'fargo-demo' …"]
    holder_of("127.0.0.1:9443")         # the twin that serves it on the host, if any

A twin whose VPC overlaps a running twin's is refused, naming it: in loopback mode both
would map their VPC onto the same 127.x addresses (as would two loopback twins of VPCs
that differ only in the first octet, ``10.20.0.0/16`` and ``172.20.0.0/16``: see
`fargo.local.ec2.loopback`); in VPC mode each lives in namespaces
of its own, but a VPC's addresses still name one task, one load balancer, at a time on
this machine (in logs, `fargo status`, the evidence of `fargo demo`).

Each control plane writes one entry (``<runtime dir>/fargo-twins/<id>.json``: its state
folder, spec, name, VPC CIDR, pid, host ports) into a folder only its user may read.
Entries of processes that have gone are ignored and swept. Two twins may run side by
side when their VPCs do not overlap and their host-facing ports differ.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from fargo.local.config import TwinConfig
from fargo.local.ec2.loopback import loopback_network
from fargo.local.state.files import write_atomically
from fargo.spec import Spec


@dataclass(frozen=True)
class TwinEntry:
    state_dir: str
    spec: str
    name: str
    cidr: str
    pid: int
    network_mode: str
    host_ports: list[str]  # "127.0.0.1:9443": what it serves on the host

    def describe(self) -> str:
        return f"twin {self.name!r} (state folder {self.state_dir}, pid {self.pid})"

    def alive(self) -> bool:
        return psutil.pid_exists(self.pid)


def machine_uid() -> int:
    """This user's id on the machine, also inside a user namespace of fargo's own (where
    ``os.getuid()`` says 0)."""
    with contextlib.suppress(OSError, ValueError):
        inside, outside, _ = Path("/proc/self/uid_map").read_text().split()[:3]
        return os.getuid() - int(inside) + int(outside)
    return os.getuid()


def registry_dir() -> Path:
    """Per user: ``$XDG_RUNTIME_DIR/fargo-twins``, else a 0700 folder in the temp dir."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    folder = (
        Path(base) / "fargo-twins"
        if base
        else Path(tempfile.gettempdir()) / f"fargo-twins-{machine_uid()}"
    )
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def _entry_path(state_dir: Path) -> Path:
    key = hashlib.sha256(str(state_dir).encode()).hexdigest()[:16]
    return registry_dir() / f"{key}.json"


def running_twins() -> list[TwinEntry]:
    """Every registered twin whose control plane still runs (stale entries are swept)."""
    found = []
    for path in sorted(registry_dir().glob("*.json")):
        try:
            entry = TwinEntry(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        if entry.alive():
            found.append(entry)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
    return found


def clashes(config: TwinConfig, spec: Spec) -> list[str]:
    """What keeps this twin from running beside the others: a VPC that overlaps the VPC of
    another twin of this user, in either network mode."""
    mine = spec.network.cidr
    problems = []
    for other in running_twins():
        if other.state_dir == str(config.state_dir) or other.pid == os.getpid():
            continue
        theirs = ipaddress.IPv4Network(other.cidr)
        stop = (
            f"give this spec another network.cidr, or stop that twin "
            f"(fargo down --state-dir {other.state_dir})"
        )
        if mine.overlaps(theirs):
            problems.append(
                f"network.cidr {mine} overlaps the VPC {other.cidr} of {other.describe()}; {stop}"
            )
        elif config.network_mode == other.network_mode == "loopback" and (
            local := loopback_network(mine)
        ).overlaps(loopback_network(theirs)):
            problems.append(
                f"network.cidr {mine} maps onto {local} in loopback mode, as the VPC "
                f"{other.cidr} of {other.describe()} does (a VPC address keeps its last three "
                f"octets); {stop}"
            )
    return problems


def holder_of(endpoint: str) -> TwinEntry | None:
    return next((t for t in running_twins() if endpoint in t.host_ports), None)


def register(config: TwinConfig, spec: Spec, host_ports: list[str]) -> Path:
    entry = TwinEntry(
        state_dir=str(config.state_dir),
        spec=str(config.spec_path),
        name=spec.name,
        cidr=str(spec.network.cidr),
        pid=os.getpid(),
        network_mode=config.network_mode,
        host_ports=sorted(host_ports),
    )
    path = _entry_path(config.state_dir)
    write_atomically(path, json.dumps(asdict(entry)).encode())
    return path


def unregister(config: TwinConfig) -> None:
    with contextlib.suppress(OSError):
        _entry_path(config.state_dir).unlink()
