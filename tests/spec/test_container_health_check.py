"""A service's container health check: the HTTP GET of a path, or a command in ECS's form."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.spec.conftest import SpecText

from fargo.spec import check_spec, parse_spec

SERVICE = "    discovery: api.internal\n"


def with_check(shop, check: str) -> SpecText:
    return shop.edit(SERVICE, f"{SERVICE}    health_check: {check}\n")


@pytest.mark.parametrize(
    ("check", "argv"),
    [
        ('{command: [CMD, /app/server, "--health"]}', ["/app/server", "--health"]),
        (
            '{command: [CMD-SHELL, "curl -f http://localhost:9000/ || exit 1"]}',
            ["/bin/sh", "-c", "curl -f http://localhost:9000/ || exit 1"],
        ),
        ("{path: /ready}", None),
    ],
)
def test_a_command_in_ecs_form_is_what_runs(shop, check: str, argv: list[str] | None) -> None:
    spec = parse_spec(with_check(shop, check).text)

    assert spec.services["api"].health_check.argv() == argv


BAD = {
    "another first word": (
        "{command: [sh, -c, 'exit 0']}",
        "services.api.health_check.command: starts with 'sh'; ECS takes",
    ),
    "a shell line in pieces": (
        "{command: [CMD-SHELL, curl, -f, /]}",
        'a CMD-SHELL command is one shell line: ["CMD-SHELL", "..."] (3 strings given',
    ),
    "no program": ("{command: [CMD]}", "health_check.command: CMD with nothing to run"),
    "an empty program": ('{command: [CMD, ""]}', "command: an empty program or shell line"),
    "a string, as compose takes it": (
        '{command: "curl -f localhost"}',
        "command: a string ('curl -f localhost'); ECS takes a list: [CMD-SHELL,",
    ),
    "both a path and a command": (
        "{path: /health, command: [CMD, /bin/true]}",
        "give path (an HTTP GET) or command, not both",
    ),
}


@pytest.mark.parametrize(("check", "message"), BAD.values(), ids=BAD.keys())
def test_a_command_not_in_ecs_form_is_refused_where_it_is(shop, check: str, message: str) -> None:
    bad = with_check(shop, check)

    (line,) = bad.rendered()
    row = bad.at(f"health_check: {check}").split(":")[0]
    assert line.startswith(f"shop.yaml:{row}:") and ": services.api.health_check" in line
    assert message in line


@pytest.mark.parametrize(
    ("dockerfile", "warned"),
    [
        ('FROM node:20-slim\nCMD ["node", "server.js"]\n', True),
        ("FROM python:3.12 AS build\nRUN true\nFROM gcr.io/distroless/static\n", True),
        ('FROM python:3.12-slim AS base\nFROM base\nCMD ["python", "app.py"]\n', False),
        ("FROM public.ecr.aws/docker/library/python:3.12\n", False),
    ],
    ids=["node", "distroless after a python stage", "a python stage's child", "mirrored python"],
)
def test_an_http_check_in_an_image_without_python_is_warned_of(
    shop, tmp_path: Path, dockerfile: str, warned: bool
) -> None:
    services = tmp_path / "services"  # the images' default context
    for image in ("web", "api"):
        (services / image).mkdir(parents=True)
        (services / image / "Dockerfile").write_text("FROM python:3.12-slim\n")
    (services / "api" / "Dockerfile").write_text(dockerfile)
    spec = tmp_path / "shop.yaml"
    spec.write_text(shop.text)

    lines = check_spec(spec, world="twin").warning_lines()  # also fargo up's

    probe = [line for line in lines if "services.api.health_check" in line]
    assert bool(probe) is warned, lines
    if warned:
        assert "ECS runs with python3 in the image" in probe[0]
        assert "services/api/Dockerfile:" in probe[0] and "health_check.command" in probe[0]
        spec.write_text(with_check(shop, "{command: [CMD, /app/server, --health]}").text)
        again = check_spec(spec, world="twin").warning_lines()
        assert not [line for line in again if "health_check" in line]  # a command: none
