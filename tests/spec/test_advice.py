"""Warnings (fargo.spec.advice): what looks like a secret in plain ``environment``."""

from __future__ import annotations

import pytest

from fargo.spec import World, check_spec_text, parse_spec

API_URL = '      API_URL: "http://${lb:edge.dns_name}"\n'
# Documentation examples from AWS, not real keys.
ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
WORLDS: tuple[World, ...] = ("cloud", "twin")


def warnings(spec_text, *, world: World = "cloud") -> list[str]:
    fixed = spec_text.edit(
        "certificate: {domain: shop.example.com}",
        "certificate: {domain: shop.example.com, hosted_zone: example.com}",
    )
    return check_spec_text(fixed.text, fixed.name, world=world).warning_lines()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DB_PASSWORD", "hunter2", "DB_PASSWORD looks like the name of a secret"),
        ("github_token", "ghp_0123456789", "github_token looks like the name of a secret"),
        ("STRIPE_API_KEY", "sk_live_0123", "STRIPE_API_KEY looks like the name of a secret"),
        ("JWT_SECRET", "s3cr3t", "JWT_SECRET looks like the name of a secret"),
        ("TLS_PRIVATE_KEY", "-----BEGIN", "TLS_PRIVATE_KEY looks like the name of a secret"),
        ("UPLOADER", ACCESS_KEY_ID, "the value looks like an AWS access key id"),
        ("UPLOADER_KEY", f"k={SECRET_ACCESS_KEY}", "the value looks like an AWS secret access key"),
    ],
)
@pytest.mark.parametrize("world", WORLDS)
def test_a_secret_in_plain_environment_is_a_warning_without_its_value(
    shop, name: str, value: str, message: str, world: World
) -> None:
    edited = shop.edit(API_URL, f"{API_URL}      {name}: {value!r}\n")

    [line] = warnings(edited, world=world)

    assert line.startswith(
        f"shop.yaml:{edited.at(name + ':')}: warning: services.web.environment.{name}: {message} ("
    )
    assert line.endswith(
        "(environment values are plain text in fargo.yaml and the task definition; move it to "
        f"the service's secrets: section (services.web.secrets.{name}: ssm_parameter or "
        "secrets_manager, and local: {env: VARIABLE} or {file: PATH} for the twin))"
    )
    assert value not in line
    assert parse_spec(edited.text).services["web"].environment[name] == value


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("VERSION", "3f786850e387550fdab836ed7e6dc881de23001b"),  # a commit id: hex, one case
        ("DB_PASSWORD_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"),
        ("TOKEN_URL", "${lb:edge.dns_name}"),  # a reference, no literal value
        ("API_TOKEN", ""),
        ("GREETING", "Hello world"),
    ],
)
def test_what_is_no_secret_gets_no_warning(shop, name: str, value: str) -> None:
    assert warnings(shop.edit(API_URL, f"{API_URL}      {name}: {value!r}\n")) == []


def test_a_secret_moved_to_secrets_gets_no_warning(shop) -> None:
    moved = shop.edit(
        API_URL,
        f"{API_URL}    secrets:\n"
        "      DB_PASSWORD: {ssm_parameter: /shop/db, local: {env: SHOP_DB_PASSWORD}}\n",
    )

    assert warnings(moved) == []
