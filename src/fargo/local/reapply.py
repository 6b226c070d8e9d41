"""A new spec applied to a running twin as a diff: `fargo up` on a twin that runs.

    changes = await reapply(runtime, new_spec)   # raises `SpecRefused`: nothing changed
    changes.applied   # ["service web: environment.GREETING changed → revision 2 rolled out", …]
    changes.completed # False when a deployment rolled back or a service did not come up

What the diff (`fargo.local.spec_diff`) finds is checked first, with no side effect: what
a running twin cannot change, and the new spec against every part (listeners the data
plane cannot take, secrets without a local value, environment references), so a refused
spec leaves the twin as it was. Then, in order:

1. images the added and rolled services run are pushed (built from their sources);
2. Cloud Map: new discovery services created, changed ones updated in place; new and
   changed Service Connect endpoints made (`fargo.local.cloudmap.service_connect`);
3. every part takes the new spec: the network (VPC mode: its security groups), the
   load balancers (new target groups, health check settings, listeners and rules: the
   running Caddy loads the new config — graceful, no connection dropped), the task
   wiring, the secrets, the cluster; the answer waits until the data plane routes by it;
4. services, together: removed ones drained and stopped (as ECS's DeleteService), added
   ones created and waited for, changed ones scaled, updated in place, or rolled out by
   a rolling deployment within their minimum and maximum percent;
5. target groups, discovery services and Service Connect endpoints the spec no longer
   has are deleted once their targets and instances are gone.

What did not change is not touched: its tasks, registrations, the Caddy process and the
DNS server stay as they are.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fargo.local.cloudmap.registry import CloudMapError
from fargo.local.cloudmap.service_connect import delete_endpoint, make_endpoint
from fargo.local.ecs.cluster import CRASH_LOOP_LIMIT, ServiceScheduler
from fargo.local.ecs.deployment import DEPLOYMENT_TIMEOUT_SECONDS, rolling_deployment
from fargo.local.ecs.secrets import TaskSecrets
from fargo.local.elb.errors import ElbError
from fargo.local.spec_diff import (
    Change,
    ChangeKind,
    ServiceChange,
    SpecChanges,
    diff_specs,
    endpoint_changes,
)
from fargo.spec import Spec, service_connect
from fargo.spec.service_connect import Endpoint

if TYPE_CHECKING:
    from fargo.local.runtime import Runtime

# How long an added or scaled service is waited for to reach its desired count in service.
SERVICE_READY_TIMEOUT_SECONDS = 120.0
# How long the answer waits for the load balancers to route by the new config.
ROUTED_TIMEOUT_SECONDS = 5.0
READY_POLL_SECONDS = 0.05


class SpecRefused(Exception):
    """The new spec cannot be applied to the running twin; nothing was changed."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class AppliedSpec:
    """What applying a new spec did: one line per change, and whether all completed."""

    changes: SpecChanges
    applied: list[str] = field(default_factory=list)
    completed: bool = True


def check(runtime: Runtime, new: Spec) -> SpecChanges:
    """The changes ``new`` makes to the running twin; `SpecRefused` (with every problem)
    if any cannot be applied. No side effect."""
    changes = diff_specs(runtime.spec, new)
    problems = [r.describe() for r in changes.refused]
    if changes.refused:  # the rest is checked against a spec the twin can take
        raise SpecRefused(problems)
    problems += runtime.elb.data_plane.reconfigure_problems(new)
    problems += TaskSecrets(new, runtime.spec_path.parent).validate()
    wiring = runtime.task_hooks_for(new, on_change=lambda: None)
    problems += wiring.validate()
    if problems:
        raise SpecRefused(problems)
    return changes


async def reapply(runtime: Runtime, new: Spec) -> AppliedSpec:
    """Apply ``new`` to the running twin (see the module docstring); `SpecRefused` if it
    cannot be, with nothing changed."""
    changes = check(runtime, new)
    result = AppliedSpec(changes)
    if changes.empty:
        return result
    old = runtime.spec
    services = {c.name: c for c in changes.services}
    _push_images(runtime, new, changes)
    result.applied += [_image_line(c) for c in changes.images]
    result.applied += _apply_discovery(runtime, new, changes)
    made, retired = endpoint_changes(old, new)
    for endpoint in made:
        make_endpoint(runtime.cloud_map, endpoint)
        result.applied.append(f"Service Connect endpoint {endpoint.dns_name}: made")
    for change in services.values():
        if change.kind is ChangeKind.REMOVED:
            # No replacement starts for a service about to be deleted.
            runtime.cluster.services[change.name].stopping = True
    _take_spec(runtime, new)
    runtime.autoscaling.reconfigure(new)  # the new bounds and policies during the apply
    await runtime.elb.wait_routed(ROUTED_TIMEOUT_SECONDS)
    result.applied += [f"target group {c.name}: {c.summary()}" for c in changes.target_groups]
    result.applied += [f"load balancer {c.name}: {c.summary()}" for c in changes.load_balancers]
    result.applied += [f"listener {c.name}: {c.summary()}" for c in changes.listeners]
    result.applied += [f.describe() for f in changes.other]
    outcomes = await asyncio.gather(
        *(_apply_service(runtime, old, new, change) for change in services.values())
    )
    for line, completed in outcomes:
        result.applied.append(line)
        result.completed &= completed
    rolled_back = [
        c.name
        for c, (_, completed) in zip(services.values(), outcomes, strict=True)
        if c.rolls and not completed
    ]
    if rolled_back:
        _keep_previous_definitions(runtime, old, rolled_back)
    # Again: rolled-back services' settings as they were, and every autoscaled count
    # (added services', the spec's new desired counts) within its bounds.
    runtime.autoscaling.reconfigure(runtime.spec)
    result.applied += _delete_retired(runtime, old, new, changes)
    result.applied += _delete_endpoints(runtime, new, retired)
    runtime.changed_now()
    return result


def _push_images(runtime: Runtime, new: Spec, changes: SpecChanges) -> None:
    """Build and push the images of the services that get new tasks; a failed build is
    `SpecRefused` (nothing else has changed yet)."""
    wanted = {
        new.services[c.name].image
        for c in changes.services
        if c.kind is ChangeKind.ADDED or c.rolls
    }
    for name in sorted(wanted):
        try:
            runtime.registry.push(name, new.images[name])
        except Exception as err:  # a build's own error names the Dockerfile line
            raise SpecRefused([f"image {name}: {err}"]) from err


def _image_line(change: Change) -> str:
    if change.kind is ChangeKind.REMOVED:
        return f"image {change.name}: removed from the spec (the registry keeps its images)"
    return f"image {change.name}: {change.summary()}"


def _apply_discovery(runtime: Runtime, new: Spec, changes: SpecChanges) -> list[str]:
    """Create the new discovery services and update the changed ones (removed ones go
    once their instances have: `_delete_retired`)."""
    if new.discovery is None:
        return []
    lines = []
    for change in changes.discovery_services:
        service = new.discovery_service(change.name)
        if service is None:
            continue
        apply = (
            runtime.cloud_map.create_service
            if change.kind is ChangeKind.ADDED
            else runtime.cloud_map.update_service
        )
        apply(
            new.discovery.namespace,
            service.name,
            ttl=service.ttl,
            record_types=service.record_types,
            routing_policy=service.routing_policy,
        )
        lines.append(f"discovery service {change.name}: {change.summary()}")
    return lines


def _take_spec(runtime: Runtime, new: Spec) -> None:
    """Every part that holds the spec takes the new one (the order: what new tasks meet
    first — their network and load balancers — before the cluster starts any)."""
    runtime.network.reconfigure(new)
    runtime.elb.reconfigure(new)
    runtime.hooks.spec = new
    runtime.secrets.spec = new
    runtime.cluster.spec = new
    runtime.log_router.retention_days = new.logging.retention_days
    runtime.spec = new


async def _apply_service(
    runtime: Runtime, old: Spec, new: Spec, change: ServiceChange
) -> tuple[str, bool]:
    """Apply one service's change; its line and whether it completed."""
    name = change.name
    cluster = runtime.cluster
    if change.kind is ChangeKind.REMOVED:
        count = len(cluster.services[name].active())
        await cluster.delete_service(name)
        return f"service {name}: removed ({_tasks(count)} drained and stopped)", True
    service = new.services[name]
    if change.kind is ChangeKind.ADDED:
        scheduler = cluster.create_service(name, service)
        ready = await _wait_in_service(scheduler, service.desired_count)
        line = f"service {name}: added ({_tasks(service.desired_count)})"
        return (line if ready else f"{line}; not all in service yet (see `fargo status`)"), ready
    scheduler = cluster.services[name]
    scheduler.update_definition(service)
    line = f"service {name}: {change.summary()}"
    if change.scales:
        before, scheduler.desired_count = scheduler.desired_count, service.desired_count
        scheduler.event(
            f"desired count changed from {before} to {service.desired_count} (new spec)"
        )
        if not change.rolls:  # a deployment starts the new count itself, on the new revision
            scheduler.wake()
    if change.rolls:
        image = runtime.registry.pull(service.image)
        completed = await rolling_deployment(scheduler, image, timeout=DEPLOYMENT_TIMEOUT_SECONDS)
        if completed:
            return f"{line} → revision {scheduler.revision} rolled out", True
        return (
            f"{line} → the deployment failed and rolled back to revision "
            f"{scheduler.revision} (see `fargo events --service {name}`)",
            False,
        )
    if change.scales:
        ready = await _wait_in_service(scheduler, service.desired_count)
        tail = "" if ready else " (not there yet: see `fargo status`)"
        return f"{line} → scaled to {_tasks(service.desired_count)}{tail}", ready
    return f"{line} → updated in place", True


def _keep_previous_definitions(runtime: Runtime, old: Spec, names: list[str]) -> None:
    """Services whose deployment rolled back run their previous definition again, and the
    twin's spec says so: their replacement tasks get it, and the next `fargo up` sees the
    difference and tries again."""
    services = {**runtime.spec.services, **{name: old.services[name] for name in names}}
    _take_spec(runtime, runtime.spec.model_copy(update={"services": services}))
    for name in names:
        runtime.cluster.services[name].update_definition(old.services[name])


async def _wait_in_service(scheduler: ServiceScheduler, count: int) -> bool:
    """Wait until ``count`` tasks of the scheduler are in service and no surplus runs, or
    it fails to start them, or the timeout; whether it got there."""
    deadline = time.monotonic() + SERVICE_READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if len(scheduler.in_service()) >= count and len(scheduler.active()) == count:
            return True
        if scheduler.failed_starts >= CRASH_LOOP_LIMIT:
            return False
        await asyncio.sleep(READY_POLL_SECONDS)
    return False


def _delete_retired(runtime: Runtime, old: Spec, new: Spec, changes: SpecChanges) -> list[str]:
    """Delete the target groups and discovery services the spec no longer has; one that
    still has targets or instances (a rolled-back service still registered there) stays."""
    lines = []
    for change in changes.target_groups:
        if change.kind is ChangeKind.REMOVED:
            try:
                runtime.elb.delete_target_group(change.name)
            except ElbError as err:
                lines.append(f"target group {change.name}: not deleted yet: {err}")
    if old.discovery is not None:
        for change in changes.discovery_services:
            if change.kind is ChangeKind.REMOVED:
                try:
                    runtime.cloud_map.delete_service(old.discovery.namespace, change.name)
                    lines.append(f"discovery service {change.name}: removed")
                except CloudMapError as err:
                    lines.append(f"discovery service {change.name}: not deleted yet: {err}")
    return lines


def _delete_endpoints(runtime: Runtime, new: Spec, retired: list[Endpoint]) -> list[str]:
    """Delete what the retired Service Connect endpoints used and no endpoint of ``new``
    uses; one a rolled-back service is still registered in stays."""
    lines = []
    kept = service_connect.endpoints(new).values()
    for endpoint in retired:
        try:
            delete_endpoint(runtime.cloud_map, endpoint, keep=kept)
        except CloudMapError as err:
            lines.append(f"Service Connect endpoint {endpoint.dns_name}: not deleted yet: {err}")
            continue
        if endpoint.dns_name not in {e.dns_name for e in kept}:
            lines.append(f"Service Connect endpoint {endpoint.dns_name}: removed")
    return lines


def _tasks(count: int) -> str:
    return f"{count} task" if count == 1 else f"{count} tasks"
