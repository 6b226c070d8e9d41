"""The loader (fargo.spec.loader): reading the file, YAML positions, errors a person can act on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fargo.spec import SpecFileError, SpecInvalid, load_spec, parse_spec

# --- the file itself ---------------------------------------------------------------------------


def _file_error(path: Path) -> SpecFileError:
    with pytest.raises(SpecFileError) as caught:
        load_spec(path)
    assert caught.value.path == path
    return caught.value


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"

    err = _file_error(path)

    assert (err.line, err.column) == (None, None)
    assert str(err) == f"{path}: no such file; create it or pass -f PATH"


def test_directory_instead_of_a_file(tmp_path: Path) -> None:
    err = _file_error(tmp_path)

    assert str(err) == f"{tmp_path}: is a directory, expected a YAML file"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(tmp_path: Path, shop) -> None:
    path = tmp_path / "fargo.yaml"
    path.write_text(shop.text)
    path.chmod(0)
    try:
        err = _file_error(path)
    finally:
        path.chmod(0o600)

    assert str(err) == f"{path}: permission denied; make the file readable"


def test_permission_denied_even_when_running_as_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # chmod 000 does not stop root, so make the read itself fail the way it would for a user.
    path = tmp_path / "fargo.yaml"

    def denied(self: Path, *args: object, **kwargs: object) -> str:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)

    err = _file_error(path)

    assert str(err) == f"{path}: permission denied; make the file readable"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "fargo.yaml"
    path.write_bytes(b"name: caf\xe9\n")

    err = _file_error(path)

    assert (err.line, err.column) == (1, 10)
    assert str(err) == (
        f"{path}:1:10: not UTF-8 text: byte 0xe9 here (invalid continuation byte); "
        "save the file as UTF-8"
    )


def test_not_utf8_names_the_line_and_the_character_column(tmp_path: Path) -> None:
    path = tmp_path / "fargo.yaml"
    path.write_bytes("name: shop\n# café\nregion: \xe9u\n".encode().replace(b"\xc3\xa9u", b"\xe9u"))

    err = _file_error(path)

    assert (err.line, err.column) == (3, 9)


@pytest.mark.parametrize(
    ("text", "where", "reason"),
    [
        pytest.param(
            "name: shop\n  region: [eu\n",
            "2:1",
            "this line is indented 2 spaces, deeper than the line before (0) though that "
            "line's value is already given; align it with its sibling keys",
            id="indented deeper",
        ),
        pytest.param(
            "network:\n  subnets:\n    public: []\n   private: []\n",
            "4:4",
            "this line is indented 3 spaces, which matches no level above; align it with "
            "its sibling keys",
            id="indented between levels",
        ),
        pytest.param(
            "cluster:\n  name: shop\n  - x\n",
            "3:3",
            "a list item ('- ...') where a key belongs: indent it under a key that takes a "
            "list, or write it as 'key: value'",
            id="list item among keys",
        ),
        pytest.param(
            "name: [shop\n",
            "1:7",
            "the '[' opened here is not closed before the end of the file; close it with ']'",
            id="unclosed flow list",
        ),
        pytest.param(
            'name: "shop\nregion: eu-west-1\ncluster: {name: x}\n',
            "1:7",
            'the " opened here is never closed; close the string with "',
            id="unclosed quote",
        ),
        pytest.param(
            "name: shop\nregion eu-west-1\ncluster: {name: x}\n",
            "2:1",
            "'region eu-west-1' has no ':' after its key; write 'key: value'",
            id="key without colon",
        ),
        pytest.param(
            "name: shop\ncluster:\n  name x\n  container_insights: true\n",
            "3:3",
            "'name x' has no ':' after its key; write 'key: value'",
            id="nested key without colon",
        ),
        pytest.param(
            "name: shop\nregion:eu-west-1\ncluster: {name: x}\n",
            "2:8",
            "'region:eu-west-1': a ':' after a key needs a space after it ('key: value')",
            id="no space after colon",
        ),
        pytest.param(
            "name: a: b\n",
            "1:8",
            "a value holds ': ', which YAML reads as a new key; quote the value (key: \"a: b\")",
            id="colon in a value",
        ),
        pytest.param(
            "discovery:\n  services:\n    -name: api.internal\n      ttl: 10\n",
            "3:6",
            "'-name: api.internal': a list item needs a space after its '-' ('- key: value')",
            id="list item without a space after the dash",
        ),
        pytest.param(
            "name: shop\n\tregion: eu-west-1\n",
            "2:1",
            "a tab character: YAML indents with spaces only; use spaces",
            id="tab",
        ),
        pytest.param(
            "name: shop\nregion: eu-west-1\nname: depot\n",
            "3:1",
            "key 'name' is given twice in one mapping (first at line 1); keep one",
            id="duplicate key",
        ),
        pytest.param(
            "name: *shop\n",
            "1:7",
            "'*shop' refers to an anchor '&shop' defined nowhere; quote the value if '*' "
            "is meant literally",
            id="undefined alias",
        ),
        pytest.param(
            "name: " + "[" * 400 + "]" * 400 + "\n",
            "1:70",  # the top-level mapping is the first level, this '[' the 65th
            "brackets or indentation nest more than 64 levels deep here; a fargo spec "
            "needs fewer than ten",
            id="nested hundreds deep",
        ),
        pytest.param(
            "- name: shop\n- name: depot\n",
            "1:1",
            "the top level must be a mapping of keys, found a list",
            id="top-level list",
        ),
        pytest.param(
            "just some words\n",
            "1:1",
            "the top level must be a mapping of keys, found a string",
            id="top-level string",
        ),
    ],
)
def test_file_that_is_not_a_spec_document(
    tmp_path: Path, text: str, where: str, reason: str
) -> None:
    path = tmp_path / "fargo.yaml"
    path.write_text(text)

    err = _file_error(path)

    assert f"{err.line}:{err.column}" == where
    assert err.reason == reason
    assert str(err) == f"{path}:{where}: {reason}"


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fargo.yaml"
    path.write_text(text)

    err = _file_error(path)

    assert str(err) == f"{path}: the file is empty; start from the fargo.yaml in the project root"


def test_problems_name_the_file_they_came_from(tmp_path: Path, shop) -> None:
    path = tmp_path / "staging.yaml"
    bad = shop.edit("memory: 512", "memory: 4096")
    path.write_text(bad.text)

    with pytest.raises(SpecInvalid) as caught:
        load_spec(path)

    assert caught.value.path == path
    assert str(caught.value).splitlines() == [
        f"{path}: 1 problem in the spec",
        f"  {path}:{bad.at('memory: 4096')}: services.api.memory: "
        "Fargate offers no task with 256 CPU units and 4096 MiB "
        "(with cpu 256 use memory 512, 1024, 2048)",
    ]


# --- field errors from the model, located and explained ---------------------------------------

TYPOS = {
    "top level": ("logging:", "loging:", "loging", "logging"),
    "nested": ("container_insights:", "container_insight:", "cluster.container_insight", None),
    "list item": ("ttl: 10", "tll: 10", "discovery.services[0].tll", "ttl"),
    "rule in a listener": (
        "            action: {forward: api}",
        "            acton: {forward: api}",
        "load_balancers.edge.listeners[0].rules[0].acton",
        "action",
    ),
}


@pytest.mark.parametrize(("old", "new", "field", "meant"), TYPOS.values(), ids=TYPOS.keys())
def test_misspelt_key_suggests_the_right_one(
    shop, old: str, new: str, field: str, meant: str | None
) -> None:
    bad = shop.edit(old, new)
    typo = field.rsplit(".", 1)[-1]
    meant = meant or old.rstrip(":").strip()

    rendered = [r for r in bad.rendered() if f": {field}: " in r]

    assert rendered == [
        f"shop.yaml:{bad.at(new.strip())}: {field}: "
        f"unknown field {typo!r} (did you mean {meant!r}?)"
    ]


def test_unknown_key_without_a_close_match_lists_the_known_ones(shop) -> None:
    bad = shop.edit("ttl: 10", "colour: 10")

    assert bad.rendered() == [
        f"shop.yaml:{bad.at('colour')}: discovery.services[0].colour: unknown field 'colour' "
        "(expected one of: name, ttl, record_types, routing_policy, failure_threshold)"
    ]


WRONG_TYPES = {
    "string for an int": (
        "port: 9000",
        "port: nine",
        "services.api.port",
        "port: nine",
        ["valid integer", "found 'nine'"],
    ),
    "string for a bool": (
        "container_insights: true",
        "container_insights: maybe",
        "cluster.container_insights",
        "container_insights",
        ["valid boolean", "found 'maybe'"],
    ),
    "list for a map": (
        "web: {dockerfile: web/Dockerfile}",
        "web: [web/Dockerfile]",
        "images.web",
        "web: [",
        ["valid dictionary", "found a list"],
    ),
    "map for a list": (
        "target_groups: [web]",
        "target_groups: {web: 1}",
        "services.web.target_groups",
        "target_groups: {",
        ["valid list", "found a mapping"],
    ),
    "out of range": (
        "port: 9000",
        "port: 70000",
        "services.api.port",
        "port: 70000",
        ["less than or equal to 65535", "found 70000"],
    ),
    "not one of the choices": (
        "protocol: HTTPS\n",
        "protocol: HTTPX\n",
        "load_balancers.edge.listeners[0].protocol",
        "protocol: HTTPX",
        ["'HTTP' or 'HTTPS'", "found 'HTTPX'"],
    ),
    "not a CIDR block": (
        "cidr: 10.20.0.0/16",
        "cidr: 10.20.0.0/33",
        "network.cidr",
        "cidr:",
        ["IPv4 network", "found '10.20.0.0/33'"],
    ),
}


@pytest.mark.parametrize(
    ("old", "new", "field", "at", "says"), WRONG_TYPES.values(), ids=WRONG_TYPES.keys()
)
def test_wrong_type_names_what_was_found_and_expected(
    shop, old: str, new: str, field: str, at: str, says: list[str]
) -> None:
    bad = shop.edit(old, new)

    [rendered] = bad.rendered()

    assert rendered.startswith(f"shop.yaml:{bad.at(at)}: {field}: ")
    for words in says:
        assert words in rendered


MISSING = {
    "nested field": ("  cidr: 10.20.0.0/16\n", "", "network.cidr", "network:"),
    "list item field": (
        "    - name: api.internal\n      ttl: 10\n",
        "    - ttl: 10\n",
        "discovery.services[0].name",
        "ttl: 10",
    ),
    "top-level section": (
        "cluster:\n  name: shop\n  container_insights: true\n",
        "",
        "cluster",
        "name: shop",
    ),
}


@pytest.mark.parametrize(("old", "new", "field", "at"), MISSING.values(), ids=MISSING.keys())
def test_missing_required_field(shop, old: str, new: str, field: str, at: str) -> None:
    bad = shop.edit(old, new)
    name = field.rsplit(".", 1)[-1]

    assert bad.rendered() == [f"shop.yaml:{bad.at(at)}: {field}: missing required field {name!r}"]


def test_every_field_error_is_reported_in_one_run_in_file_order(shop) -> None:
    bad = (
        shop.edit("container_insights: true", "container_insight: true")
        .edit(
            "ssl_policy: ELBSecurityPolicy-TLS13-1-2-2021-06",
            "ssl_policy: ELBSecurityPolicy-2016-08",
        )
        .edit('- path_pattern: ["/api/*"]', "- {}")
        .edit("port: 9000", "port: nine")
        .edit("logging:", "loging:")
    )

    problems = bad.problems()

    assert [(p.field_path, f"{p.line}:{p.column}") for p in problems] == [
        ("cluster.container_insight", bad.at("container_insight:")),
        ("load_balancers.edge.listeners[0].ssl_policy", bad.at("ssl_policy:")),
        (
            "load_balancers.edge.listeners[0].rules[0].conditions[0]",
            bad.at("{}\n            action"),
        ),
        ("services.api.port", bad.at("port: nine")),
        ("loging", bad.at("loging:")),
    ]
    assert str(SpecInvalid(Path("shop.yaml"), problems)).startswith(
        "shop.yaml: 5 problems in the spec\n"
    )


def test_parse_spec_names_the_given_path_only_in_messages(shop) -> None:
    with pytest.raises(SpecInvalid) as caught:
        parse_spec(shop.edit("memory: 512", "memory: 4096").text, "configs/prod.yaml")

    assert caught.value.path == Path("configs/prod.yaml")
    assert caught.value.problems[0].render(caught.value.path).startswith("configs/prod.yaml:")
