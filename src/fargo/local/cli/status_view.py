"""How ``fargo status`` (and ``fargo up``) show the twin to people: endpoints and tables.

``data`` is the control plane's ``GET /status`` answer (`Runtime.describe()`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def render_endpoints(data: dict[str, Any]) -> str:
    endpoints = data["endpoints"]
    lines = [f"the twin is up (state in {data['state_dir']}):"]
    for name, urls in endpoints["load_balancers"].items():
        dns = endpoints["load_balancer_dns_names"].get(name, "")
        lines.append(f"  load balancer {name:<10} {'  '.join(urls)}   ({dns})")
    lines.append(f"  discovery DNS server     {endpoints['discovery_dns_server']} (UDP and TCP)")
    lines.append(f"  CA certificate           {endpoints['ca_certificate']}")
    if data.get("ready_after_seconds") is not None:
        lines.append(f"  every target healthy after {data['ready_after_seconds']:.2f} s")
    return "\n".join(lines)


def render_status(data: dict[str, Any]) -> str:
    """`fargo status` for people: services, tasks, load balancers, discovery."""
    lines = [render_endpoints(data), "", "services:"]
    services = data["services"]
    lines += _table(
        ["SERVICE", "DESIRED", "RUNNING", "HEALTHY", "RESTARTS"],
        [[s["name"], s["desired"], s["running"], s["healthy"], s["restarts"]] for s in services],
    )
    for svc in services:
        if svc.get("failure"):
            lines.append(f"  {svc['name']} failing: {svc['failure']}")
    lines += ["", "tasks (a replaced task is a new task; restarts are counted per service):"]
    lines += _table(
        ["TASK", "SERVICE", "ADDRESS", "STATUS", "HEALTH"],
        [
            [t["id"], svc["name"], t["address"], t["last_status"], t["health"]]
            for svc in services
            for t in svc["tasks"]
        ],
    )
    lines += ["", *render_load_balancers(data["load_balancers"])]
    lines += ["", "discovery:"]
    for service in data["discovery"]:
        lines.append(f"  {service['name']} (TTL {service['ttl']}, {service['routing_policy']})")
        lines += _table(
            ["INSTANCE", "ADDRESS", "HEALTH"],
            [[i["id"], f"{i['ipv4']}:{i['port']}", i["health"]] for i in service["instances"]],
            indent="    ",
        )
    return "\n".join(lines)


def render_load_balancers(described: dict[str, Any]) -> list[str]:
    """Listeners (with their local address), rules by priority, target groups and targets.

    ``described`` is `ElasticLoadBalancing.describe()`.
    """
    from fargo.spec.elb import Action, RuleCondition
    from fargo.spec.routing import describe_action, describe_condition

    lines = ["load balancers:"]
    for name, lb in described.get("load_balancers", {}).items():
        lines.append(f"  {name} ({lb['scheme']}, {lb['address']})")
        for listener in lb["listeners"]:
            policy = f", {listener['ssl_policy']}" if listener.get("ssl_policy") else ""
            lines.append(
                f"    listener {listener['protocol']}:{listener['port']} "
                f"on {listener['local_address']}{policy}"
            )
            rows = [
                [
                    rule["priority"],
                    "; ".join(
                        describe_condition(RuleCondition.model_validate(c))
                        for c in rule["conditions"]
                    ),
                    describe_action(Action.model_validate(rule["action"])),
                ]
                for rule in listener["rules"]
            ]
            rows.append(
                ["default", "", describe_action(Action.model_validate(listener["default_action"]))]
            )
            lines += _table(["PRIORITY", "CONDITIONS", "ACTION"], rows, indent="      ")
    groups = described.get("target_groups", {})
    if groups:
        lines.append("  target groups:")
    for name, group in groups.items():
        check = group["health_check"]
        lines.append(
            f"    {name} (health check {check['path']} → {check['matcher']}, "
            f"{len(group['routable'])} routable)"
        )
        lines += _table(
            ["TARGET", "ADDRESS", "STATE", "REASON"],
            [
                [t["id"], f"{t['ip']}:{t['port']}", t["state"], t.get("reason") or ""]
                for t in group["targets"]
            ],
            indent="      ",
            empty="(no registered targets)",
        )
    if caddy := described.get("caddy"):
        lines.append(
            f"  data plane: Caddy pid {caddy['pid']}, {caddy['restarts']} restarts, "
            f"{caddy['config_loads']} config loads"
        )
    return lines


def _table(
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    indent: str = "  ",
    empty: str = "(none)",
) -> list[str]:
    """Left-aligned columns, two spaces apart; numbers right-aligned."""
    if not rows:
        return [f"{indent}{empty}"]
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row[i], int) for row in rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return (indent + "  ".join(parts)).rstrip()

    return [line(list(headers)), *(line(r) for r in cells)]
