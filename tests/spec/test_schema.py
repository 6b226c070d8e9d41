"""The JSON Schema of fargo.yaml: valid, committed up to date, and pointed at by fargo.yaml."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from ruamel.yaml import YAML

from fargo.cli import main
from fargo.spec import json_schema
from fargo.spec.defaults import SCHEMA_FILE

REGENERATE = "regenerate it: fargo schema -o fargo.schema.json"


def test_schema_is_valid_json_schema() -> None:
    schema = json_schema()

    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) >= {"name", "network", "images", "cluster", "services"}


def test_reference_spec_satisfies_the_schema(root: Path) -> None:
    document = YAML(typ="safe").load(root / "fargo.yaml")

    jsonschema.Draft202012Validator(json_schema()).validate(document)


def test_schema_rejects_a_misspelt_key_as_an_editor_would(root: Path) -> None:
    document = YAML(typ="safe").load(root / "fargo.yaml")
    document["cluster"]["container_insight"] = True

    with pytest.raises(jsonschema.ValidationError, match="container_insight"):
        jsonschema.Draft202012Validator(json_schema()).validate(document)


def test_committed_schema_is_what_fargo_schema_prints(root: Path, capsys) -> None:
    assert main(["schema"]) == 0
    printed = capsys.readouterr().out

    committed = (root / SCHEMA_FILE).read_text(encoding="utf-8")
    assert json.loads(committed) == json.loads(printed), REGENERATE
    assert committed == printed, REGENERATE


def test_schema_output_option_writes_the_same_text(tmp_path: Path, capsys) -> None:
    target = tmp_path / "schema.json"

    assert main(["schema", "-o", str(target)]) == 0

    assert capsys.readouterr().out == ""
    assert json.loads(target.read_text(encoding="utf-8")) == json_schema()


def test_fargo_schema_command_prints_json(root: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "fargo.cli", "schema"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert (run.returncode, run.stderr) == (0, "")
    assert json.loads(run.stdout) == json_schema()


def test_fargo_yaml_points_editors_at_the_schema(root: Path) -> None:
    first_line = (root / "fargo.yaml").read_text(encoding="utf-8").splitlines()[0]

    assert first_line == f"# yaml-language-server: $schema=./{SCHEMA_FILE}"
    assert (root / SCHEMA_FILE).is_file()
