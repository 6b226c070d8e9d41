"""The twin's runtime options of `fargo up`.

add_runtime_options(parser)   # --time-scale/--aws-timings, --network, --publish,
                              # --console-port, --ca-allow
config = config_from_args(args)      # a `TwinConfig`, or `ConfigError` naming the option
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fargo.local.clock import TwinClock
from fargo.local.config import (
    DEFAULT_NETWORK_MODE,
    NETWORK_MODES,
    ConfigError,
    TwinConfig,
    parse_published_port,
)
from fargo.spec import domains
from fargo.spec.defaults import LOCAL_TIME_SCALE


def add_runtime_options(parser: argparse.ArgumentParser) -> None:
    timing = parser.add_mutually_exclusive_group()
    timing.add_argument(
        "--aws-timings",
        action="store_true",
        help="every interval at AWS speed (health checks, grace periods, draining, back-off)",
    )
    timing.add_argument(
        "--time-scale",
        type=float,
        default=LOCAL_TIME_SCALE,
        help=f"the twin's clock against AWS's (default {LOCAL_TIME_SCALE}: ten times faster)",
    )
    parser.add_argument(
        "--network",
        choices=NETWORK_MODES,
        default=DEFAULT_NETWORK_MODE,
        help=f"network mode (default {DEFAULT_NETWORK_MODE})",
    )
    parser.add_argument(
        "--publish",
        "-p",
        action="append",
        default=[],
        metavar="LISTENER_PORT:HOST_PORT",
        help="serve a load balancer listener on this host port, e.g. 443:9443 (repeatable)",
    )
    parser.add_argument(
        "--console-port",
        type=int,
        default=0,
        metavar="PORT",
        help="the console's port on 127.0.0.1 (the demo page's dashboard API; default: any "
        "free port, shown by `fargo status`)",
    )
    parser.add_argument(
        "--ca-allow",
        action="append",
        default=[],
        metavar="NAME",
        help="let the local CA sign this public name and the names under it for the HTTPS "
        "listeners, e.g. shop.mycompany.com (repeatable; taken when the twin starts; without "
        "it a spec's public names are left out of the twin's certificate: whoever reads the "
        "CA's key could impersonate them)",
    )


def config_from_args(args: argparse.Namespace, *, spec_path: Path, state_dir: Path) -> TwinConfig:
    """The `TwinConfig` the options ask for; `ConfigError` names a bad one."""
    time_scale = 1.0 if getattr(args, "aws_timings", False) else args.time_scale
    try:
        clock = TwinClock(time_scale)
    except ValueError:
        raise ConfigError(f"--time-scale must be above 0, not {time_scale}") from None
    return TwinConfig(
        spec_path=spec_path,
        state_dir=state_dir,
        clock=clock,
        network_mode=args.network,
        published_ports=dict(parse_published_port(text) for text in args.publish),
        console_port=getattr(args, "console_port", 0),
        ca_allowed=tuple(_ca_allowed(getattr(args, "ca_allow", []))),
    )


def _ca_allowed(names: list[str]) -> list[str]:
    """The ``--ca-allow`` names, each a DNS name below a public suffix; `ConfigError` if not."""
    allowed = []
    for text in names:
        name = domains.base_name(text.strip())
        if not domains.host_name(name):
            raise ConfigError(f"--ca-allow {text!r}: not a DNS name (e.g. shop.mycompany.com)")
        reason = domains.too_broad(name)
        if reason is not None:
            raise ConfigError(f"--ca-allow {text!r}: {reason}")
        allowed.append(name)
    return allowed
