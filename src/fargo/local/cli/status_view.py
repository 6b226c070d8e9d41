"""How ``fargo status`` (and ``fargo up``) show the twin to people: endpoints and tables.

``status`` is the control plane's ``GET /status`` answer, a `fargo.local.status.TwinStatus`.
A service that is not at its desired count says so on its row: how many tasks are
healthy, its state (FAILING, DEGRADED, …), its restarts and why its last task stopped.
"""

from __future__ import annotations

from collections.abc import Sequence

from fargo.local.ecs.task import TaskStatus
from fargo.local.status import (
    DataPlaneState,
    LoadBalancingStatus,
    Readiness,
    ServiceStatus,
    TaskSummary,
    TwinStatus,
)
from fargo.spec.routing import describe_action, describe_condition


def render_endpoints(status: TwinStatus) -> str:
    endpoints = status.endpoints
    lines = [f"the twin is up in {status.network_mode} mode (state in {status.state_dir}):"]
    for name, urls in endpoints.load_balancers.items():
        dns = endpoints.load_balancer_dns_names.get(name, "")
        lines.append(f"  load balancer {name:<10} {'  '.join(urls)}   ({dns})")
    dns_state = "UDP and TCP"
    if endpoints.discovery_dns_problem is not None:
        dns_state = f"down: {endpoints.discovery_dns_problem}; starting it again"
    lines.append(f"  discovery DNS server     {endpoints.discovery_dns_server} ({dns_state})")
    for endpoint in status.service_connect:
        lines.append(
            f"  service connect          {endpoint.endpoint} → {endpoint.service}: "
            "runs as DNS, without a proxy"
        )
    lines.append(f"  CA certificate           {endpoints.ca_certificate}")
    if endpoints.aws_api is not None:
        lines.append(
            f"  AWS API (boto3, aws CLI) {endpoints.aws_api}   (AWS_ENDPOINT_URL; docs/aws-api.md)"
        )
    if endpoints.console:
        lines.append(f"  console (demo page API)  {endpoints.console}")
    down = [p for p in status.load_balancers.data_planes if p.state is DataPlaneState.DOWN]
    for plane in down:
        # Healthy targets do not help while the process that carries requests is down.
        lines.append(
            f"  data plane down ({', '.join(plane.load_balancers)}): "
            f"{plane.problem or 'caddy is not running'}"
        )
    discovery_down = endpoints.discovery_dns_problem is not None
    if status.ready_after_seconds is not None and not down and not discovery_down:
        lines.append(f"  every target healthy after {status.ready_after_seconds:.2f} s")
    return "\n".join(lines)


def render_readiness(readiness: Readiness) -> list[str]:
    """Ready, or what readiness waits for (a line each), and whether it will come by itself."""
    if readiness.ready:
        return ["readiness: ready (every service has its desired count of healthy tasks)"]
    if readiness.failure is not None:
        head = "readiness: not ready, and not by itself (tasks keep failing at start); waiting for:"
    else:
        head = "readiness: not ready; waiting for:"
    return [head, *(f"  {waiting}" for waiting in readiness.waiting)]


def render_status(status: TwinStatus) -> str:
    """`fargo status` for people: readiness, services, tasks, load balancers, discovery."""
    lines = [render_endpoints(status), *render_readiness(status.readiness), "", "services:"]
    lines += render_services(status.services)
    lines += ["", "tasks (a replaced task is a new task; restarts are counted per service):"]
    lines += table(
        ["TASK", "SERVICE", "ADDRESS", "STATUS", "HEALTH"],
        [
            [t.id, svc.name, t.address or "-", _task_status(t), t.health]
            for svc in status.services
            for t in svc.tasks
        ],
    )
    lines += ["", *render_load_balancers(status.load_balancers)]
    # Imported here: the metrics' tables are drawn with this module's `table`.
    from fargo.local.cli.metrics_view import render_metrics

    lines += ["", "metrics (`fargo top` shows them live):"]
    lines += ["  " + line if line else line for line in render_metrics(status.metrics)]
    lines += ["", "discovery:"]
    for service in status.discovery:
        lines.append(f"  {service.name} (TTL {service.ttl}, {service.routing_policy})")
        lines += table(
            ["INSTANCE", "ADDRESS", "HEALTH"],
            [[i.id, f"{i.ipv4}:{i.port}", i.health] for i in service.instances],
            indent="    ",
        )
    if status.service_connect:
        lines += [
            "",
            "service connect (DNS in the twin, no proxy: no retries, no outlier detection):",
        ]
        for endpoint in status.service_connect:
            lines.append(
                f"  {endpoint.endpoint} ({endpoint.service}; {endpoint.discovery_name} in "
                f"{endpoint.namespace})"
            )
            lines += table(
                ["INSTANCE", "ADDRESS", "HEALTH"],
                [[i.id, f"{i.ipv4}:{i.port}", i.health] for i in endpoint.instances],
                indent="    ",
            )
    return "\n".join(lines)


def render_services(services: Sequence[ServiceStatus]) -> list[str]:
    """A row per service, e.g. ``backend-private  0/2  FAILING  5  3  Essential container in
    task exited (exit code 1)``; below it, the failure of a service whose tasks keep failing
    at start, with the task's last log lines."""
    lines = table(
        ["SERVICE", "HEALTHY", "STATE", "RESTARTS", "FAILED STARTS", "LAST STOP"],
        [
            [
                s.name,
                f"{s.healthy}/{s.desired}",
                s.state.value,
                s.restarts,
                s.failed_starts,
                s.last_stop_reason or "-",
            ]
            for s in services
        ],
    )
    for svc in services:
        if svc.failure:
            first, *rest = svc.failure.splitlines()
            lines.append(f"  {svc.name} is failing: {first}")
            lines += [f"    {line}" for line in rest]
    return lines


def _task_status(task: TaskSummary) -> str:
    """ECS lastStatus, and where it is headed when the task is being stopped."""
    if task.desired_status is TaskStatus.STOPPED and task.last_status is not TaskStatus.STOPPED:
        return f"{task.last_status.value} → STOPPED"
    return task.last_status.value


def render_load_balancers(described: LoadBalancingStatus) -> list[str]:
    """Listeners (with their local address), rules by priority, target groups and targets."""
    lines = ["load balancers:"]
    for name, lb in described.load_balancers.items():
        lines.append(f"  {name} ({lb.scheme}, {lb.address})")
        for listener in lb.listeners:
            policy = f", {listener.ssl_policy}" if listener.ssl_policy else ""
            lines.append(
                f"    listener {listener.protocol}:{listener.port} "
                f"on {listener.local_address}{policy}"
            )
            rows: list[list[object]] = [
                [
                    rule.priority,
                    "; ".join(describe_condition(c) for c in rule.conditions),
                    describe_action(rule.action),
                ]
                for rule in listener.rules
            ]
            rows.append(["default", "", describe_action(listener.default_action)])
            lines += table(["PRIORITY", "CONDITIONS", "ACTION"], rows, indent="      ")
    if described.target_groups:
        lines.append("  target groups:")
    for name, group in described.target_groups.items():
        check = group.health_check
        lines.append(
            f"    {name} (health check {check.path} → {check.matcher}, "
            f"{len(group.routable)} routable)"
        )
        lines += table(
            ["TARGET", "ADDRESS", "STATE", "REASON"],
            [[t.id, f"{t.ip}:{t.port}", t.state.value, t.reason or ""] for t in group.targets],
            indent="      ",
            empty="(no registered targets)",
        )
    for plane in described.data_planes:
        lines.append(
            f"  {plane.name} ({', '.join(plane.load_balancers)}): {plane.state}, "
            f"pid {plane.pid}, {plane.restarts} restarts, {plane.config_loads} config loads"
        )
        if plane.problem:
            lines.append(f"    {plane.problem}")
    return lines


def table(
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
