"""How Caddy learns a target group's targets: A records of ``<group>.targets.fargo.``.

    records = target_records({"frontend": ["127.0.1.7:80"]})   # what the resolver answers
    dynamic_targets(spec, {"frontend": [Target("task-1", "127.0.1.7", 80)]})
    # {"frontend": DynamicTargets("frontend.targets.fargo.", 80)}

A forward to one target group has Caddy look the group's targets up at a small DNS
server (`fargo.local.caddy.target_resolver`, in a data-plane process of its own, so a
busy control plane never stalls a request), every `TARGET_LOOKUP_REFRESH_SECONDS`.
Targets then come and go without loading a new config, which matters under load: at
each config load Go's HTTP server closes every keep-alive connection of the old config
after its current response, and a client that sent its next request on it at that
moment sees the connection drop. A group that cannot be looked up (targets on different ports, an
IPv6 target, more than fit one UDP answer) has its targets listed in the config.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence

from fargo.local.caddy.forward import TARGET_LOOKUP_REFRESH_SECONDS, DynamicTargets
from fargo.local.elb.target_health import Target
from fargo.spec.model import Spec

TARGETS_ZONE = "targets.fargo."
# After a change of a group's targets, Caddy may use its previous lookup this long.
LOOKUP_SETTLE_SECONDS = TARGET_LOOKUP_REFRESH_SECONDS + 0.02
# A records that fit a 512-byte UDP answer; a larger group is listed in the config.
LOOKUP_MAX_TARGETS = 28


def lookup_name(target_group: str) -> str:
    """The name whose A records are ``target_group``'s routable targets."""
    return f"{target_group}.{TARGETS_ZONE}"


def target_records(routable: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Each group's lookup name → the IPs of its routable ``ip:port`` addresses."""
    return {
        lookup_name(group): [address.rpartition(":")[0] for address in addresses]
        for group, addresses in routable.items()
    }


def dynamic_targets(
    spec: Spec, targets: Mapping[str, Iterable[Target]]
) -> dict[str, DynamicTargets]:
    """Groups Caddy can look up: every target (and service) on one port, IPv4."""
    lookups = {}
    for group, registered in targets.items():
        members = list(registered)
        ports = {spec.services[s].port for s in spec.services_in(group)}
        ports |= {target.port for target in members}
        ipv4 = all(_is_ipv4(target.ip) for target in members)
        if len(ports) == 1 and ipv4 and len(members) <= LOOKUP_MAX_TARGETS:
            lookups[group] = DynamicTargets(lookup_name(group), ports.pop())
    return lookups


def _is_ipv4(ip: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(ip), ipaddress.IPv4Address)
    except ValueError:
        return False
