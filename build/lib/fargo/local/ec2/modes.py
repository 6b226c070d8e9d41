"""Choosing the network mode: VPC mode wherever the machine allows it, else loopback.

    config = choose_network_mode(config)   # "auto" becomes "vpc" or "loopback" (+ why)
    enter_network_mode(config)             # first thing in the process, before any thread

VPC mode needs ``ip``, ``nft``, ``nsenter``, ``unshare`` and ``mount`` and, for a user
other than root, unprivileged user namespaces. ``--network auto`` (the default) falls
back to loopback mode and says why; ``--network vpc`` refuses to start instead.
"""

from __future__ import annotations

import dataclasses
import os

from fargo.local.config import ConfigError, TwinConfig
from fargo.local.ec2.namespaces import enter_user_namespace, in_own_user_namespace
from fargo.local.ec2.vpc_mode import vpc_mode_unavailable


def choose_network_mode(config: TwinConfig) -> TwinConfig:
    """``config`` with a concrete network mode; `ConfigError` if ``vpc`` cannot run."""
    if config.network_mode == "loopback":
        return config
    reason = vpc_mode_unavailable()
    if reason is None:
        return dataclasses.replace(config, network_mode="vpc")
    if config.network_mode == "vpc":
        raise ConfigError(f"--network vpc: VPC mode is not available here: {reason}")
    note = f"VPC mode is not available here ({reason}); running in loopback mode"
    return dataclasses.replace(config, network_mode="loopback", network_note=note)


def enter_network_mode(config: TwinConfig) -> None:
    """VPC mode as a user other than root: enter a user namespace of this process's own.
    Must run while the process is single-threaded (before asyncio starts a thread)."""
    if config.network_mode == "vpc" and os.geteuid() != 0 and not in_own_user_namespace():
        enter_user_namespace()
