"""The twin's seams hold in the imports: the ALB control plane never reaches into its
Caddy data plane, the VPC's plumbing stays standard-library only (an unprivileged user
runs it with the system interpreter), and the spec never imports either world."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "fargo"
VPC_PLUMBING = [
    "addressing", "commands", "eni", "eni_files", "errors", "internet_gateway", "layout",
    "link_state", "namespaces", "nat_gateway", "netns", "route_tables", "security_groups",
    "vpc",
]  # fmt: skip


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", sorted((SRC / "local" / "elb").glob("*.py")), ids=str)
def test_the_load_balancing_control_plane_does_not_import_its_data_plane(path: Path) -> None:
    assert not {m for m in imports(path) if m.startswith("fargo.local.caddy")}


@pytest.mark.parametrize("name", VPC_PLUMBING)
def test_the_vpc_plumbing_imports_only_the_standard_library(name: str) -> None:
    outside = {
        module
        for module in imports(SRC / "local" / "ec2" / f"{name}.py")
        if module.split(".")[0] not in sys.stdlib_module_names
        and not module.startswith("fargo.local.ec2")
    }
    assert outside == set()


@pytest.mark.parametrize("path", sorted((SRC / "spec").glob("*.py")), ids=str)
def test_the_spec_belongs_to_neither_world(path: Path) -> None:
    assert not {m for m in imports(path) if m.startswith(("fargo.local", "fargo.cloud"))}
