"""A task's network counters in the Docker stats shape (``networks``), from the kernel.

    task_networks(pid)
    # {"eth0": {"rx_bytes": 5120, "rx_packets": 40, "rx_errors": 0, "rx_dropped": 0,
    #           "tx_bytes": 9871, "tx_packets": 38, "tx_errors": 0, "tx_dropped": 0}}
    task_networks(pid)   # None: the process shares this machine's network (loopback mode)

In VPC mode a task's process runs in its ENI's network namespace, whose interfaces
carry only the task's traffic: ``/proc/<pid>/net/dev`` shows that namespace's
interfaces, each counted as Docker counts a container's (``lo`` left out, as Docker
does). In loopback mode the task shares this machine's network namespace, whose
counters are every process's traffic, and Linux has no per-process network counter
(``/proc/<pid>/io`` counts every read and write, files included): like Docker's stats
of a container on the host network, there is then no ``networks``.
"""

from __future__ import annotations

import os
from pathlib import Path

# /proc/net/dev: after "<interface>:", 8 receive then 8 transmit columns.
_COUNTERS = ("bytes", "packets", "errors", "dropped")  # bytes packets errs drop
_COLUMNS = 16

NetworkStats = dict[str, dict[str, int]]


def task_networks(pid: int, proc: Path = Path("/proc")) -> NetworkStats | None:
    """The interfaces of the network namespace ``pid`` runs in, or None if that is this
    process's own (the machine's network) or the process is gone."""
    try:
        if _namespace(proc / str(pid)) == _namespace(proc / "self"):
            return None
        return parse_net_dev((proc / str(pid) / "net" / "dev").read_text())
    except OSError:
        return None  # exited, or not ours to read


def parse_net_dev(text: str) -> NetworkStats:
    """``/proc/net/dev`` → interface → Docker's eight counters (``lo`` left out)."""
    answer: NetworkStats = {}
    for line in text.splitlines()[2:]:  # two header lines
        name, colon, counters = line.partition(":")
        values = counters.split()
        if not colon or len(values) < _COLUMNS:
            raise ValueError(f"/proc/net/dev: unexpected line {line!r}")
        name = name.strip()
        if name == "lo":
            continue
        numbers = [int(v) for v in values]
        receive, transmit = numbers[:4], numbers[8:12]
        stats = {f"rx_{k}": v for k, v in zip(_COUNTERS, receive, strict=True)}
        stats |= {f"tx_{k}": v for k, v in zip(_COUNTERS, transmit, strict=True)}
        answer[name] = stats
    return answer


def _namespace(process: Path) -> int:
    """The inode of the process's network namespace (equal inodes: the same namespace)."""
    return os.stat(process / "ns" / "net").st_ino
