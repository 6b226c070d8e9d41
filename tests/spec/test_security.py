"""The spec's security groups: the paths the reference system opens, and nothing else."""

from __future__ import annotations

from pathlib import Path

from fargo.spec import load_spec
from fargo.spec.security import ANYWHERE, ingress_rules, security_group_names

ROOT = Path(__file__).resolve().parents[2]


def test_the_reference_system_opens_exactly_its_paths() -> None:
    spec = load_spec(ROOT / "fargo.yaml")
    paths = {(r.group, r.port, r.source) for r in ingress_rules(spec)}
    assert paths == {
        ("lb:public", 443, ANYWHERE),
        ("lb:public", 80, ANYWHERE),
        ("service:frontend", 80, "lb:public"),
        ("service:backend-public", 8080, "lb:public"),
        ("service:backend-private", 8090, "service:backend-public"),
        ("lb:internal", 8090, "service:backend-public"),
        ("service:backend-private-with-alb", 8090, "lb:internal"),
    }


def test_every_group_is_named() -> None:
    spec = load_spec(ROOT / "fargo.yaml")
    assert security_group_names(spec) == [
        "lb:public",
        "lb:internal",
        "service:frontend",
        "service:backend-public",
        "service:backend-private",
        "service:backend-private-with-alb",
    ]
