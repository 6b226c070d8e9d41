"""A task's environment (fargo.spec.environment): names ECS owns are refused, fargo adds the
keep-alive."""

from __future__ import annotations

import pytest

from fargo.spec import parse_spec
from fargo.spec.environment import KEEP_ALIVE_ENV, task_environment

API_URL = '      API_URL: "http://${lb:edge.dns_name}"\n'


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        (
            "AWS_REGION",
            "pick another name; the task role provides credentials, and ECS sets AWS_REGION",
        ),
        (
            "AWS_ACCESS_KEY_ID",
            "pick another name; the task role provides credentials, and ECS sets AWS_REGION",
        ),
        (
            "ECS_CONTAINER_METADATA_URI_V4",
            "pick another name; read the endpoint from $ECS_CONTAINER_METADATA_URI_V4",
        ),
        (
            "ECS_CONTAINER_METADATA_URI",
            "pick another name; read the endpoint from $ECS_CONTAINER_METADATA_URI_V4",
        ),
        (KEEP_ALIVE_ENV, "set services.web.keep_alive instead"),
    ],
)
def test_a_reserved_name_is_refused_at_its_line(shop, name: str, hint: str) -> None:
    bad = shop.edit(API_URL, f"{API_URL}      {name}: x\n")

    [problem] = bad.problems()

    assert problem.field_path == f"services.web.environment.{name}"
    assert f"{problem.line}:{problem.column}" == bad.at(f"{name}: x")
    assert problem.message.startswith(f"{name} is ")
    assert problem.hint == hint


@pytest.mark.parametrize(
    "name", ["MY_AWS_REGION", "AWSOME", "ECS_CLUSTER", "REGION", "AWS_XRAY_DAEMON_ADDRESS"]
)
def test_names_that_only_look_alike_are_allowed(shop, name: str) -> None:
    spec = parse_spec(shop.edit(API_URL, f"{API_URL}      {name}: x\n").text)

    assert spec.services["web"].environment[name] == "x"


def test_a_task_gets_the_spec_environment_and_its_keep_alive(shop) -> None:
    spec = parse_spec(shop.edit("    port: 9000\n", "    port: 9000\n    keep_alive: 90\n").text)

    assert task_environment(spec.services["web"]) == {
        "API_URL": "http://${lb:edge.dns_name}",
        KEEP_ALIVE_ENV: "75",
    }
    assert task_environment(spec.services["api"]) == {KEEP_ALIVE_ENV: "90"}
