"""What changed between the spec a twin runs and a new one, typed (pure: no I/O).

    changes = diff_specs(running, new)
    changes.refused        # [Refusal("network.cidr", ...)]: only `fargo down` + `fargo up`
    changes.services       # [ServiceChange("web", CHANGED, fields=[FieldChange(...)])]
    changes.empty          # nothing to apply

`fargo.local.reapply` applies the result to a running twin; this module only compares.
A service's fields fall in four kinds, as ECS treats them: its desired count (a scale),
its deployment settings (updated in place), where its tasks register (target groups,
discovery: ECS starts a new deployment for a change of those), and everything else —
the task definition (image, port, size, environment, secrets, health check, …): a new
revision, rolled out. A field this module does not know is the task definition's, so a
new spec field rolls the service rather than being ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from fargo.spec import Spec, refs, service_connect
from fargo.spec.elb import Listener
from fargo.spec.service_connect import Endpoint

# How a running twin applies each field of a service (see the module docstring).
SCALE_FIELDS = frozenset({"desired_count"})
DEPLOYMENT_SETTINGS = frozenset(
    {"min_healthy_percent", "max_percent", "autoscaling", "capacity", "calls"}
)
REGISTRATION_FIELDS = frozenset({"target_groups", "discovery"})
# Fields whose values are not shown in a change's line: only that they changed.
VALUES_NOT_SHOWN = frozenset({"environment", "secrets"})

RESTART_HINT = "`fargo down` then `fargo up` applies it"


class ChangeKind(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


@dataclass(frozen=True)
class FieldChange:
    """One field's old and new value; ``path`` is dotted (``health_check.path``)."""

    path: str
    old: Any
    new: Any
    shown: bool = True  # whether the values may be shown (not an environment value)

    def describe(self) -> str:
        if self.old is None and self.new is not None:
            if self.shown and not isinstance(self.new, dict | list):
                return f"{self.path} set to {_show(self.new)}"
            return f"{self.path} added"
        if self.new is None and self.old is not None:
            return f"{self.path} removed"
        if not self.shown or isinstance(self.old, dict | list) or isinstance(self.new, dict | list):
            return f"{self.path} changed"
        return f"{self.path} {_show(self.old)} → {_show(self.new)}"

    @property
    def top(self) -> str:
        """The first part of the path: the field of the spec object it is in."""
        return self.path.split(".", 1)[0].split("[", 1)[0]


@dataclass(frozen=True)
class Refusal:
    """A change a running twin cannot apply (``field`` is the spec's path to it)."""

    field: str
    reason: str

    def describe(self) -> str:
        return f"{self.field}: {self.reason}; {RESTART_HINT}"


@dataclass(frozen=True)
class Change:
    """A named spec object added, removed, or changed in ``fields``."""

    name: str
    kind: ChangeKind
    fields: tuple[FieldChange, ...] = ()

    def summary(self) -> str:
        """``added``, ``removed`` or the changed fields, ``; ``-separated."""
        if self.kind is not ChangeKind.CHANGED:
            return self.kind.value
        return "; ".join(f.describe() for f in self.fields)


@dataclass(frozen=True)
class ServiceChange(Change):
    """An ECS service: see `rolls`, `scales` and `settings` for what applying it does."""

    image_changed: bool = False  # the definition of the image it runs changed

    @property
    def rolls(self) -> bool:
        """A new task definition revision (or new registrations): a rolling deployment."""
        return self.kind is ChangeKind.CHANGED and (
            self.image_changed
            or any(f.top not in SCALE_FIELDS | DEPLOYMENT_SETTINGS for f in self.fields)
        )

    @property
    def scales(self) -> bool:
        return any(f.top in SCALE_FIELDS for f in self.fields)

    def summary(self) -> str:
        text = super().summary()
        if self.image_changed:
            return f"{text}; its image's definition changed" if self.fields else "image changed"
        return text


@dataclass(frozen=True)
class ListenerChange(Change):
    """A listener of a load balancer; ``name`` is ``<load balancer>:<port>``."""

    load_balancer: str = ""
    port: int = 0


@dataclass
class SpecChanges:
    """Everything that differs, by kind of spec object, and what cannot be applied."""

    refused: list[Refusal] = field(default_factory=list)
    images: list[Change] = field(default_factory=list)
    target_groups: list[Change] = field(default_factory=list)
    load_balancers: list[Change] = field(default_factory=list)
    listeners: list[ListenerChange] = field(default_factory=list)
    discovery_services: list[Change] = field(default_factory=list)
    services: list[ServiceChange] = field(default_factory=list)
    other: list[FieldChange] = field(default_factory=list)  # applied as they are (logging, …)

    @property
    def empty(self) -> bool:
        return not (
            self.refused
            or self.images
            or self.target_groups
            or self.load_balancers
            or self.listeners
            or self.discovery_services
            or self.services
            or self.other
        )

    def lines(self) -> list[str]:
        """One line per change, as planned (the runtime reports how each was applied)."""
        lines = [f"image {c.name}: {c.summary()}" for c in self.images]
        lines += [f"target group {c.name}: {c.summary()}" for c in self.target_groups]
        lines += [f"load balancer {c.name}: {c.summary()}" for c in self.load_balancers]
        lines += [f"listener {c.name}: {c.summary()}" for c in self.listeners]
        lines += [f"discovery service {c.name}: {c.summary()}" for c in self.discovery_services]
        lines += [f"service {c.name}: {c.summary()}" for c in self.services]
        lines += [f"{f.describe()}" for f in self.other]
        return lines


def diff_specs(old: Spec, new: Spec) -> SpecChanges:
    """What applying ``new`` to a twin running ``old`` changes, and what it cannot."""
    changes = SpecChanges(refused=_refusals(old, new))
    before, after = old.model_dump(mode="json"), new.model_dump(mode="json")
    changes.images = _named_changes(before["images"], after["images"])
    changes.target_groups = _named_changes(before["target_groups"], after["target_groups"])
    changes.discovery_services = _named_changes(
        _by_name(old.discovery.services if old.discovery else []),
        _by_name(new.discovery.services if new.discovery else []),
    )
    changed_images = {c.name for c in changes.images if c.kind is ChangeKind.CHANGED}
    moved = _moved_aliases(old, new)
    for name in sorted(before["services"].keys() | after["services"].keys()):
        if name not in after["services"]:
            changes.services.append(ServiceChange(name, ChangeKind.REMOVED))
        elif name not in before["services"]:
            changes.services.append(ServiceChange(name, ChangeKind.ADDED))
        else:
            fields = _fields(before["services"][name], after["services"][name])
            fields += _moved_aliases_called(new.services[name].environment, moved)
            image_changed = new.services[name].image in changed_images
            if fields or image_changed:
                changes.services.append(
                    ServiceChange(
                        name, ChangeKind.CHANGED, tuple(fields), image_changed=image_changed
                    )
                )
    for name, lb in new.load_balancers.items():
        if name not in old.load_balancers:
            continue  # refused
        settings = {k: v for k, v in after["load_balancers"][name].items() if k != "listeners"}
        previous = {k: v for k, v in before["load_balancers"][name].items() if k != "listeners"}
        fields = [f for f in _fields(previous, settings) if f.top not in {"scheme", "certificate"}]
        if fields:
            changes.load_balancers.append(Change(name, ChangeKind.CHANGED, tuple(fields)))
        changes.listeners += _listener_changes(
            name, old.load_balancers[name].listeners, lb.listeners
        )
    if before["logging"] != after["logging"]:
        changes.other += _fields(before["logging"], after["logging"], prefix="logging.")
    if old.cluster.container_insights != new.cluster.container_insights:
        changes.other.append(
            FieldChange(
                "cluster.container_insights",
                old.cluster.container_insights,
                new.cluster.container_insights,
            )
        )
    return changes


def _refusals(old: Spec, new: Spec) -> list[Refusal]:
    """What a running twin cannot change: its identity, network, cluster, the set of load
    balancers and what each was started with (scheme, certificate), the discovery
    namespace, the Service Connect namespace."""
    refused = []
    for top in ("name", "region"):
        if getattr(old, top) != getattr(new, top):
            refused.append(
                Refusal(top, f"{getattr(old, top)} → {getattr(new, top)} (the twin's identity)")
            )
    for f in _fields(old.network.model_dump(mode="json"), new.network.model_dump(mode="json")):
        refused.append(
            Refusal(
                f"network.{f.path}",
                f"{_show(f.old)} → {_show(f.new)} (the network is laid out at start)",
            )
        )
    if old.cluster.name != new.cluster.name:
        refused.append(
            Refusal("cluster.name", f"{old.cluster.name} → {new.cluster.name} (tasks' ARNs)")
        )
    if old.cluster.service_connect != new.cluster.service_connect:
        refused.append(Refusal("cluster.service_connect", "the Service Connect namespace changed"))
    if old.tracing != new.tracing:
        refused.append(
            Refusal("tracing", f"{old.tracing} → {new.tracing} (the X-Ray daemon starts with it)")
        )
    for name in old.load_balancers.keys() - new.load_balancers.keys():
        refused.append(
            Refusal(f"load_balancers.{name}", "removed (its addresses are laid out at start)")
        )
    for name in new.load_balancers.keys() - old.load_balancers.keys():
        refused.append(
            Refusal(f"load_balancers.{name}", "added (its addresses are laid out at start)")
        )
    for name, lb in new.load_balancers.items():
        was = old.load_balancers.get(name)
        if was is None:
            continue
        if was.scheme != lb.scheme:
            refused.append(Refusal(f"load_balancers.{name}.scheme", f"{was.scheme} → {lb.scheme}"))
        if was.certificate != lb.certificate:
            refused.append(
                Refusal(
                    f"load_balancers.{name}.certificate",
                    "changed (the listener certificate is issued at start)",
                )
            )
    old_namespace = old.discovery.namespace if old.discovery else None
    new_namespace = new.discovery.namespace if new.discovery else None
    if old_namespace != new_namespace:
        refused.append(
            Refusal("discovery.namespace", f"{old_namespace} → {new_namespace} (tasks' resolvers)")
        )
    return refused


def endpoint_changes(old: Spec, new: Spec) -> tuple[list[Endpoint], list[Endpoint]]:
    """Service Connect endpoints to make (new or changed) and to delete (gone or changed),
    when the namespace stays (a new namespace is refused)."""
    if service_connect.namespace(old) != service_connect.namespace(new):
        return [], []
    before, after = service_connect.endpoints(old), service_connect.endpoints(new)
    made = [e for name, e in after.items() if before.get(name) != e]
    deleted = [e for name, e in before.items() if after.get(name) != e]
    return made, deleted


def _moved_aliases(old: Spec, new: Spec) -> dict[str, tuple[str, str]]:
    """Service Connect endpoints in both specs whose client alias changed: discovery name
    → (old alias, new alias)."""
    before, after = service_connect.endpoints(old), service_connect.endpoints(new)
    return {
        name: (was.dns_name, after[name].dns_name)
        for name, was in before.items()
        if name in after and after[name].dns_name != was.dns_name
    }


def _moved_aliases_called(
    environment: Mapping[str, str], moved: Mapping[str, tuple[str, str]]
) -> list[FieldChange]:
    """The environment values that name a moved alias (`_moved_aliases`): their resolved
    value changes, so the service's tasks roll. A reference to an endpoint the new spec
    lacks is the spec's error, not a change."""
    return [
        FieldChange(f"environment.{key}", *moved[ref.name], shown=False)
        for key, value in environment.items()
        for ref in refs.references(value)
        if ref.kind == "service_connect" and ref.name in moved
    ]


def _listener_changes(
    load_balancer: str, old: Iterable[Listener], new: Iterable[Listener]
) -> list[ListenerChange]:
    before = {listener.port: listener for listener in old}
    after = {listener.port: listener for listener in new}
    changes = []
    for port in sorted(before.keys() | after.keys()):
        name = f"{load_balancer}:{port}"
        if port not in after:
            changes.append(ListenerChange(name, ChangeKind.REMOVED, (), load_balancer, port))
        elif port not in before:
            changes.append(ListenerChange(name, ChangeKind.ADDED, (), load_balancer, port))
        else:
            fields = _listener_fields(before[port], after[port])
            if fields:
                changes.append(
                    ListenerChange(name, ChangeKind.CHANGED, tuple(fields), load_balancer, port)
                )
    return changes


def _listener_fields(old: Listener, new: Listener) -> list[FieldChange]:
    """A listener's changes, its rules by priority (``rule 10 added``)."""
    fields = []
    for key in ("protocol", "ssl_policy"):
        if getattr(old, key) != getattr(new, key):
            fields.append(FieldChange(key, getattr(old, key), getattr(new, key)))
    if old.default_action != new.default_action:
        fields.append(FieldChange("default action", 0, 1, shown=False))
    before = {rule.priority: rule for rule in old.rules}
    after = {rule.priority: rule for rule in new.rules}
    for priority in sorted(before.keys() | after.keys()):
        was, now = before.get(priority), after.get(priority)
        if was != now:
            fields.append(
                FieldChange(
                    f"rule {priority}",
                    None if was is None else 0,
                    None if now is None else 1,
                    shown=False,
                )
            )
    return fields


def _named_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
    changes = []
    for name in sorted(before.keys() | after.keys()):
        if name not in after:
            changes.append(Change(name, ChangeKind.REMOVED))
        elif name not in before:
            changes.append(Change(name, ChangeKind.ADDED))
        elif fields := _fields(before[name], after[name]):
            changes.append(Change(name, ChangeKind.CHANGED, tuple(fields)))
    return changes


def _by_name(models: Iterable[Any]) -> dict[str, Any]:
    return {m.name: m.model_dump(mode="json") for m in models}


def _fields(before: Any, after: Any, prefix: str = "", shown: bool = True) -> list[FieldChange]:
    """The leaves that differ between two JSON values; lists are compared whole."""
    if before == after:
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        found = []
        for key in sorted(before.keys() | after.keys(), key=str):
            path = f"{prefix}{key}"
            hide = not shown or (not prefix and key in VALUES_NOT_SHOWN)
            found += _fields(before.get(key), after.get(key), f"{path}.", shown=not hide)
        return found
    return [FieldChange(prefix.rstrip("."), before, after, shown=shown)]


def _show(value: Any) -> str:
    return str(value) if value not in ("", None) else '""'
