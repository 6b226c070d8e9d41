"""``env_file:``: compose's KEY=VALUE files joining a service's environment, read where the
spec is; every problem at the env_file entry, with the file's own line."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.spec.conftest import SHOP

from fargo.spec import SpecInvalid, check_spec, load_spec, parse_spec

API_URL = '    environment:\n      API_URL: "http://${lb:edge.dns_name}"\n'
ZONE = (
    "certificate: {domain: shop.example.com}",
    "certificate: {domain: shop.example.com, hosted_zone: example.com}",
)


def project(tmp_path: Path, env_file: str, files: dict[str, str], environment: str = "") -> Path:
    """The shop spec whose web service has ``env_file`` (YAML) and ``environment`` lines."""
    lines = f"    env_file: {env_file}\n"
    if environment:
        lines += f"    environment:\n{environment}"
    (tmp_path / "shop.yaml").write_text(SHOP.replace(API_URL, lines).replace(*ZONE))
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path / "shop.yaml"


def rendered(spec: Path) -> list[str]:
    with pytest.raises(SpecInvalid) as caught:
        check_spec(spec, world="cloud")
    return [p.render(spec) for p in caught.value.problems]


def entry_line(spec: Path) -> int:
    return (
        spec.read_text()
        .splitlines()
        .index(next(line for line in spec.read_text().splitlines() if "env_file:" in line))
        + 1
    )


def test_files_join_the_environment_a_later_file_and_environment_winning(tmp_path: Path) -> None:
    spec = project(
        tmp_path,
        "[base.env, local.env]",
        {
            "base.env": "# shared\nMODE=staging\nGREETING='hello  there'\nexport LEVEL=info\n",
            "local.env": 'LEVEL=debug\nMULTI="a\\nb"\n\n',
        },
        environment="      MODE: production\n",
    )
    environment = load_spec(spec).services["web"].environment
    assert environment == {
        "MODE": "production",  # environment wins
        "GREETING": "hello  there",
        "LEVEL": "debug",  # the later file wins
        "MULTI": "a\nb",
    }


def test_one_path_is_a_list_of_one(tmp_path: Path) -> None:
    spec = project(tmp_path, "web.env", {"web.env": "A=1\n"})
    assert load_spec(spec).services["web"].environment == {"A": "1"}
    assert load_spec(spec).services["web"].env_file == ["web.env"]


def test_a_missing_file_is_an_error_at_its_entry(tmp_path: Path) -> None:
    spec = project(tmp_path, "[nope.env]", {})
    (problem,) = rendered(spec)
    assert problem.startswith(f"{spec}:{entry_line(spec)}:")
    assert "services.web.env_file[0]: nope.env: no such file" in problem
    assert "(create it, or remove it from env_file)" in problem


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("A=1\nthis is not an assignment\n", "web.env:2: cannot read 'this is not an assignment'"),
        ("A=1\n\nLONELY\n", "web.env:3: LONELY has no value"),
        ("A=1\n9LIVES=x\n", "web.env:2: '9LIVES' is not a valid variable name"),
    ],
)
def test_a_line_that_is_not_key_equals_value_is_named_with_its_line(
    tmp_path: Path, text: str, said: str
) -> None:
    spec = project(tmp_path, "[web.env]", {"web.env": text})
    (problem,) = rendered(spec)
    assert f"services.web.env_file[0]: {said}" in problem, problem


def test_environment_checks_apply_to_file_values_at_the_entry(tmp_path: Path) -> None:
    spec = project(tmp_path, "[web.env]", {"web.env": "A=1\nAWS_REGION=eu-west-1\n"})
    (problem,) = rendered(spec)
    assert problem.startswith(f"{spec}:{entry_line(spec)}:")
    assert "services.web.env_file[0]: AWS_REGION (web.env:2): AWS_REGION is reserved" in problem


def test_a_secret_looking_value_in_a_file_warns_at_the_entry(tmp_path: Path) -> None:
    spec = project(tmp_path, "[web.env]", {"web.env": "DB_PASSWORD=hunter2\n"})
    (warning,) = check_spec(spec, world="cloud").warning_lines()
    assert "services.web.env_file[0]: DB_PASSWORD (web.env:1):" in warning
    assert "hunter2" not in warning and "secrets:" in warning


def test_spec_text_alone_reads_no_file() -> None:
    text = SHOP.replace(API_URL, "    env_file: [absent.env]\n")
    assert parse_spec(text).services["web"].environment == {}
