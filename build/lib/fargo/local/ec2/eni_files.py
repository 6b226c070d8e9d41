"""The name-resolution files of an interface's namespace: ``resolv.conf`` pointing at
the VPC's DNS server (base + 2) and ``hosts`` naming the interface as EC2 does
(``ip-10-0-10-7``). The runtime bind-mounts them over /etc in the task's mount
namespace; here they are only rendered and written.

Usage::

    paths = write_eni_files(Path(".fargo/tasks/t1/etc"), IPv4Address("10.0.10.7"),
                            nameserver=IPv4Address("10.0.0.2"),
                            search=["microservice.local"])
    paths.resolv_conf   # .fargo/tasks/t1/etc/resolv.conf
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

# ndots:1 (the resolver's default): a name with a dot, such as
# private.backend.microservice.local, is asked as is first, so a Cloud Map name costs
# one query; a bare name ("backend") goes through the search list. A short timeout,
# because the DNS server is one hop away.
RESOLVER_OPTIONS = "options ndots:1 timeout:1 attempts:3"


@dataclass(frozen=True)
class EniFiles:
    """Where an interface's name-resolution files were written."""

    resolv_conf: Path
    hosts: Path


def hostname_for(ip: IPv4Address) -> str:
    """EC2's private host name of an address: ``ip-10-0-10-7``."""
    return "ip-" + str(ip).replace(".", "-")


def render_resolv_conf(nameserver: IPv4Address, search: Sequence[str] = ()) -> str:
    lines = ["# written by fargo: the VPC's DNS server (VPC base + 2)", f"nameserver {nameserver}"]
    if search:
        lines.append("search " + " ".join(search))
    lines.append(RESOLVER_OPTIONS)
    return "\n".join(lines) + "\n"


def render_hosts(ip: IPv4Address, hostname: str | None = None) -> str:
    name = hostname or hostname_for(ip)
    return (
        "# written by fargo\n"
        "127.0.0.1\tlocalhost\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
        f"{ip}\t{name}\n"
    )


def write_eni_files(
    folder: Path,
    ip: IPv4Address,
    *,
    nameserver: IPv4Address,
    search: Sequence[str] = (),
    hostname: str | None = None,
) -> EniFiles:
    """Write ``resolv.conf`` and ``hosts`` into ``folder`` (created if missing), each
    replaced atomically so a running task never reads half a file."""
    folder.mkdir(parents=True, exist_ok=True)
    files = EniFiles(resolv_conf=folder / "resolv.conf", hosts=folder / "hosts")
    _replace(files.resolv_conf, render_resolv_conf(nameserver, search))
    _replace(files.hosts, render_hosts(ip, hostname))
    return files


def _replace(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
