"""Error values (fargo.spec.errors): how a problem reads to a person."""

from __future__ import annotations

from pathlib import Path

import pytest

from fargo.spec import Problem, SpecFileError, SpecInvalid


@pytest.mark.parametrize(
    ("loc", "field_path"),
    [
        (("services", "web", "target_groups", 0), "services.web.target_groups[0]"),
        (
            ("load_balancers", "edge", "listeners", 1, "rules", 0),
            "load_balancers.edge.listeners[1].rules[0]",
        ),
        (("logging",), "logging"),
        ((), "(top level)"),
    ],
)
def test_field_path_reads_like_the_yaml(loc: tuple[str | int, ...], field_path: str) -> None:
    assert Problem(loc, "x").field_path == field_path


def test_render_with_and_without_position_and_hint() -> None:
    located = Problem(("cluster", "name"), "too long", line=12, column=3, hint="shorten it")
    unlocated = Problem(("cluster",), "missing")

    assert located.render("fargo.yaml") == "fargo.yaml:12:3: cluster.name: too long (shorten it)"
    assert unlocated.render(Path("a/fargo.yaml")) == "a/fargo.yaml: cluster: missing"


def test_spec_invalid_lists_every_problem_under_a_count() -> None:
    problems = [Problem(("name",), "bad", 1, 1), Problem(("region",), "worse", 2, 9, "fix it")]

    assert str(SpecInvalid(Path("f.yaml"), problems[:1])).splitlines()[0] == (
        "f.yaml: 1 problem in the spec"
    )
    assert str(SpecInvalid(Path("f.yaml"), problems)).splitlines() == [
        "f.yaml: 2 problems in the spec",
        "  f.yaml:1:1: name: bad",
        "  f.yaml:2:9: region: worse (fix it)",
    ]


def test_file_error_names_the_position_when_known() -> None:
    assert str(SpecFileError(Path("f.yaml"), "not YAML", 3, 7)) == "f.yaml:3:7: not YAML"
    assert str(SpecFileError(Path("f.yaml"), "missing")) == "f.yaml: missing"
