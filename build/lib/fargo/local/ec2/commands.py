"""The programs the VPC runs inside its namespaces: ``ip -batch -`` (iproute2) for
links, addresses, routes and rules, and ``nft -f -`` (nftables) for NAT and security
groups. One process per batch, so building a namespace costs one exec, not twenty.

Usage::

    ip_batch(router, ["link add igw type veth peer name eth0 netns /proc/1/fd/5",
                      "link set igw up"])
    nft_load(router, "table ip t { ... }")
"""

from __future__ import annotations

import functools
import os
import re
import shutil
from collections.abc import Sequence
from typing import TYPE_CHECKING

from fargo.local.ec2.errors import CommandFailed, ToolMissing

if TYPE_CHECKING:
    from fargo.local.ec2.netns import NetworkNamespace

_PACKAGES = {"ip": "iproute2", "nft": "nftables", "nsenter": "util-linux"}
# An unprivileged user's PATH (su, cron) often lacks the sbin folders.
_EXTRA_PATH = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")


@functools.cache
def find_tool(name: str) -> str:
    """The absolute path of ``ip``, ``nft`` or ``nsenter``; raises ToolMissing."""
    search = os.pathsep.join([os.environ.get("PATH", ""), *_EXTRA_PATH])
    path = shutil.which(name, path=search)
    if path is None:
        raise ToolMissing(name, _PACKAGES.get(name, name))
    return path


def ip_batch(ns: NetworkNamespace, commands: Sequence[str]) -> None:
    """Run ``ip`` commands (without the leading ``ip``) inside ``ns`` in one process;
    stops at the first failing command and names it in the error."""
    if not commands:
        return
    done = ns.run([find_tool("ip"), "-batch", "-"], input="\n".join(commands) + "\n")
    if done.returncode != 0:
        raise CommandFailed("ip", ns.name, _with_failed_line(done.stderr, commands))


def nft_load(ns: NetworkNamespace, ruleset: str) -> None:
    """Load an nftables script inside ``ns`` as one transaction (all of it or nothing)."""
    done = ns.run([find_tool("nft"), "-f", "-"], input=ruleset)
    if done.returncode != 0:
        raise CommandFailed("nft", ns.name, done.stderr or f"exit status {done.returncode}")


def nft_list(ns: NetworkNamespace, *what: str) -> str:
    """The output of ``nft list <what>`` inside ``ns`` (for status and tests)."""
    done = ns.run([find_tool("nft"), "list", *what])
    if done.returncode != 0:
        raise CommandFailed("nft list", ns.name, done.stderr)
    return done.stdout


def _with_failed_line(stderr: str, commands: Sequence[str]) -> str:
    """ip reports ``Command failed -:3``; say which command that was."""
    match = re.search(r"Command failed -:(\d+)", stderr)
    if match is None:
        return stderr or "ip exited with an error"
    line = int(match.group(1))
    failed = commands[line - 1] if 0 < line <= len(commands) else "?"
    reason = stderr[: match.start()].strip() or "ip exited with an error"
    return f"`ip {failed}`: {reason}"
