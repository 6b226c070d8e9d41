"""The diff between the spec a twin runs and a new one (pure: specs in, changes out)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from fargo.local.spec_diff import ChangeKind, diff_specs, endpoint_changes
from fargo.spec import Spec
from fargo.spec.loader import parse_spec

SECOND = Path(__file__).parents[1] / "e2e" / "second.yaml"

Edit = Callable[[dict[str, Any]], None]


def specs(edit: Edit) -> tuple[Spec, Spec]:
    """second.yaml, and second.yaml after ``edit`` of its YAML document."""
    document = yaml.safe_load(SECOND.read_text())
    old = parse_spec(yaml.safe_dump(document))
    edit(document)
    return old, parse_spec(yaml.safe_dump(document))


def test_the_same_spec_has_no_changes() -> None:
    old, new = specs(lambda d: None)
    changes = diff_specs(old, new)
    assert changes.empty
    assert changes.lines() == []


def test_an_environment_change_rolls_the_service_and_hides_the_value() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["services"]["web-a"]["environment"]["SERVICE_NAME"] = "secret-ish value"

    changes = diff_specs(*specs(edit))
    (change,) = changes.services
    assert (change.name, change.kind, change.rolls, change.scales) == (
        "web-a",
        ChangeKind.CHANGED,
        True,
        False,
    )
    assert changes.lines() == ["service web-a: environment.SERVICE_NAME changed"]
    assert "secret-ish" not in "\n".join(changes.lines())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("port", 7001),
        ("memory", 1024),
        ("architecture", "ARM64"),
        ("stop_timeout", 5),
        ("keep_alive", 120),
        ("health_check", {"path": "/health"}),
        ("target_groups", ["b"]),
    ],
)
def test_a_task_definition_or_registration_change_rolls(field: str, value: Any) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["services"]["web-a"][field] = value

    (change,) = diff_specs(*specs(edit)).services
    assert change.rolls and not change.scales


def test_a_desired_count_change_only_scales() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["services"]["web-a"]["desired_count"] = 3

    changes = diff_specs(*specs(edit))
    (change,) = changes.services
    assert change.scales and not change.rolls
    assert changes.lines() == ["service web-a: desired_count 2 → 3"]


def test_deployment_settings_are_in_place() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["services"]["web-a"]["max_percent"] = 300
        d["services"]["web-a"]["autoscaling"] = {"min_capacity": 1, "max_capacity": 4}

    (change,) = diff_specs(*specs(edit)).services
    assert not change.rolls and not change.scales
    assert "max_percent 200 → 300" in change.summary()


def test_a_changed_image_definition_rolls_every_service_running_it() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["images"]["echo"]["dockerfile"] = "Dockerfile.other"

    changes = diff_specs(*specs(edit))
    assert [c.name for c in changes.images] == ["echo"]
    assert sorted(c.name for c in changes.services if c.rolls) == [
        "api",
        "web-a",
        "web-b",
        "worker",
    ]


def test_added_and_removed_services_discovery_and_target_groups() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["services"]["extra"] = {"image": "echo", "port": 7300, "discovery": "extra"}
        del d["services"]["web-b"]
        d["discovery"]["services"].append({"name": "extra", "ttl": 5})
        d["discovery"]["services"][1]["ttl"] = 10
        d["target_groups"]["c"] = {}
        del d["target_groups"]["empty"]
        d["load_balancers"]["edge"]["listeners"][0]["rules"].pop()  # the rule forwarding to it

    changes = diff_specs(*specs(edit))
    assert not changes.refused
    kinds = {c.name: c.kind for c in changes.services}
    assert kinds == {"extra": ChangeKind.ADDED, "web-b": ChangeKind.REMOVED}
    assert {c.name: c.kind for c in changes.target_groups} == {
        "c": ChangeKind.ADDED,
        "empty": ChangeKind.REMOVED,
    }
    assert {c.name: c.summary() for c in changes.discovery_services} == {
        "extra": "added",
        "worker": "ttl 30 → 10",
    }
    assert changes.lines()[-1] == "service web-b: removed"


def test_target_group_settings_are_named_with_old_and_new_values() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["target_groups"]["a"]["health_check"]["path"] = "/ready"
        d["target_groups"]["a"]["deregistration_delay"] = 1

    changes = diff_specs(*specs(edit))
    assert changes.lines() == [
        "target group a: deregistration_delay 5 → 1; health_check.path /health → /ready"
    ]
    assert not changes.services  # the tasks stay; only the load balancer's checks change


def test_rules_listeners_and_default_actions() -> None:
    def edit(d: dict[str, Any]) -> None:
        listeners = d["load_balancers"]["edge"]["listeners"]
        listeners[0]["rules"].append(
            {"priority": 60, "conditions": [{"path_pattern": ["/new"]}], "action": {"forward": "a"}}
        )
        listeners[0]["rules"][0]["action"]["fixed_response"]["status_code"] = 401
        listeners[0]["default_action"] = {"forward": "b"}
        listeners.pop()  # the HTTP listener
        listeners.append({"port": 9081, "protocol": "HTTP", "default_action": {"forward": "a"}})

    changes = diff_specs(*specs(edit))
    assert [(c.name, c.kind) for c in changes.listeners] == [
        ("edge:9080", ChangeKind.REMOVED),
        ("edge:9081", ChangeKind.ADDED),
        ("edge:9443", ChangeKind.CHANGED),
    ]
    assert changes.listeners[2].summary() == "default action changed; rule 5 changed; rule 60 added"
    assert not changes.refused


def test_what_a_running_twin_cannot_change_is_refused_by_name() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["network"]["nat_gateways"] = 2
        d["name"] = "third"
        d["cluster"]["name"] = "third"
        d["discovery"]["namespace"] = "third.internal"
        d["load_balancers"]["edge"]["scheme"] = "internal"
        d["load_balancers"]["edge"]["certificate"]["domain"] = "other.example.test"
        d["load_balancers"]["inner"] = {
            "scheme": "internal",
            "listeners": [{"port": 80, "protocol": "HTTP", "default_action": {"forward": "a"}}],
        }
        d["tracing"] = "xray"

    refused = diff_specs(*specs(edit)).refused
    fields = [r.field for r in refused]
    assert fields == [
        "name",
        "network.nat_gateways",
        "cluster.name",
        "tracing",
        "load_balancers.inner",
        "load_balancers.edge.scheme",
        "load_balancers.edge.certificate",
        "discovery.namespace",
    ]
    assert refused[1].describe() == (
        "network.nat_gateways: 1 → 2 (the network is laid out at start); "
        "`fargo down` then `fargo up` applies it"
    )


CONNECT = Path(__file__).parents[1] / "e2e" / "service_connect.yaml"


def test_a_moved_client_alias_rolls_the_server_and_every_client_naming_it() -> None:
    document = yaml.safe_load(CONNECT.read_text())
    old = parse_spec(yaml.safe_dump(document))
    document["services"]["backend-private"]["service_connect"]["dns_name"] = "b.internal"
    new = parse_spec(yaml.safe_dump(document))

    changes = diff_specs(old, new)
    assert not changes.refused
    by_name = {c.name: c for c in changes.services}
    assert by_name["backend-private"].rolls
    assert by_name["backend-public"].rolls  # its PRIVATE_DISCOVERY_URL resolves anew
    assert by_name["backend-public"].summary() == "environment.PRIVATE_DISCOVERY_URL changed"
    made, retired = endpoint_changes(old, new)
    assert [e.dns_name for e in made] == ["b.internal"]
    assert [e.dns_name for e in retired] == ["backend.internal"]
    assert endpoint_changes(old, old) == ([], [])
