"""YAML syntax errors (fargo.spec.yaml_errors): a quote or bracket left open, named where it
opens."""

from __future__ import annotations

import pytest

from fargo.spec import SpecFileError, parse_spec

SSL_POLICY = "ssl_policy: ELBSecurityPolicy-TLS13-1-2-2021-06"


def _error(text: str) -> str:
    """``line:column: reason`` of the syntax error in ``text``."""
    with pytest.raises(SpecFileError) as caught:
        parse_spec(text, "shop.yaml")
    err = caught.value
    return f"{err.line}:{err.column}: {err.reason}"


def _runs_on(quote: str, failed_at: str) -> str:
    return (
        f"the {quote} opened here is not closed on its line; a quoted value may run on over "
        f"lines, so YAML read on and only failed at {failed_at}; close it with {quote} on "
        "this line"
    )


@pytest.mark.parametrize(
    ("old", "new", "failed_at"),
    [
        pytest.param("region: eu-west-1", 'region: "eu-west-1', "line 37", id="second line"),
        pytest.param(SSL_POLICY, SSL_POLICY.replace(": ", ': "'), "line 37", id="block value"),
        pytest.param(
            "health_check: {path: /health}",
            'health_check: {path: "/health}',
            "line 36",
            id="inside braces",
        ),
    ],
)
def test_quote_left_open_in_the_shop_is_named_where_it_opens(
    shop, old: str, new: str, failed_at: str
) -> None:
    # Each quote runs on to the '"' of ["/api/*"] (line 36); YAML fails after it.
    edited = shop.edit(old, new)
    opens = edited.at(new[new.index('"') :])

    reason = _runs_on('"', failed_at)

    assert _error(edited.text) == f"{opens}: {reason}"


@pytest.mark.parametrize(
    ("text", "where", "quote", "failed_at"),
    [
        pytest.param('name: "shop\nregion: "eu-west-1"\n', "1:7", '"', "line 2", id="double"),
        pytest.param("name: 'shop\nregion: 'eu-west-1'\n", "1:7", "'", "line 2", id="single"),
        pytest.param(
            "name: 'it''s\nregion: 'eu-west-1'\n", "1:7", "'", "line 2", id="'' inside '...'"
        ),
        pytest.param(
            'name: "say \\"hi\nregion: "eu-west-1"\n', "1:7", '"', "line 2", id='\\" inside "..."'
        ),
        pytest.param(
            "name: shop's\ncluster: {name: 'shop}\nregion: 'eu-west-1'\n",
            "2:17",
            "'",
            "line 3",
            id="after a plain value holding '",
        ),
        pytest.param(
            'name: shop\ntags: ["web]\nregion: "eu"\n', "2:8", '"', "line 3", id="in a list"
        ),
        pytest.param(
            'name: "shop\n  front"\ncluster: {name: "x}\nregion: "eu"\n',
            "3:17",
            '"',
            "line 4",
            id="after a value closed on its next line",
        ),
    ],
)
def test_quote_left_open(text: str, where: str, quote: str, failed_at: str) -> None:
    assert _error(text) == f"{where}: {_runs_on(quote, failed_at)}"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        pytest.param("name: it's\nregion: [eu\n", "2:9", id="' inside a plain value"),
        pytest.param("name: shop # it's \"ours\nregion: [eu\n", "2:9", id="quotes in a comment"),
        pytest.param(
            'name: "shop\n  front"\nregion: [eu\n', "3:9", id="a value closed on its next line"
        ),
        pytest.param("name: |\n  say \"hi\n  there'\nregion: [eu\n", "4:9", id="quotes in a block"),
    ],
)
def test_what_is_no_quote_left_open_is_not_blamed(text: str, where: str) -> None:
    assert _error(text) == (
        f"{where}: the '[' opened here is not closed before the end of the file; close it with ']'"
    )


def test_quote_running_to_the_end_of_the_file(shop) -> None:
    text = shop.edit("ttl: 10", "ttl: '10").text

    assert _error(text) == "19:12: the ' opened here is never closed; close the string with '"


def test_bracket_left_open_before_a_value() -> None:
    assert _error("name: shop\ncluster: {name: \n") == (
        "2:10: the '{' opened here is not closed before the end of the file; close it with '}'"
    )


def test_brackets_left_open_by_the_hundred() -> None:
    text = "name: shop\nextra: " + "{a: " * 300 + "\n"

    assert _error(text) == (
        "2:8: the '{' opened here and the 299 opened after it are not closed before the "
        "end of the file; close each with its ']' or '}'"
    )


def test_bad_escape_inside_double_quotes_is_not_a_quote_left_open() -> None:
    assert _error('name: shop\npath: "C:\\dir"\n') == (
        "2:11: a '\\' inside \"...\" starts an escape, and this one is not a valid escape; "
        "write '\\\\' for a backslash, or quote the value with ' instead"
    )


def test_bracket_left_open_on_its_line() -> None:
    assert _error("name: shop\ncluster: [{name: x]\n") == (
        "2:11: the '{' opened here is not closed before column 19; close it with '}'"
    )
