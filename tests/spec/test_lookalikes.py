"""Names with non-ASCII look-alike letters (fargo.spec.lookalikes): the character is named."""

from __future__ import annotations

import pytest

from fargo.spec.lookalikes import describe

CYRILLIC_A = "\u0430"  # looks like 'a'
GREEK_OMICRON = "\u03bf"  # looks like 'o'


def test_a_service_name_with_a_cyrillic_letter_names_the_letter(shop) -> None:
    bad = shop.edit("  api:\n    image: api", f"  {CYRILLIC_A}pi:\n    image: api")

    [problem] = bad.problems()

    assert problem.field_path == f"services.{CYRILLIC_A}pi"
    assert problem.message == (
        f"'{CYRILLIC_A}pi' contains '{CYRILLIC_A}' (U+0430 CYRILLIC SMALL LETTER A), "
        "which looks like 'a'"
    )
    assert problem.hint == "type it in plain ASCII"
    assert f"{problem.line}:{problem.column}" == bad.at(f"{CYRILLIC_A}pi:")


def test_a_reference_with_a_look_alike_letter_names_it_instead_of_a_near_miss(shop) -> None:
    bad = shop.edit("    image: api\n", f"    image: {CYRILLIC_A}pi\n")

    [problem] = bad.problems()

    assert (problem.field_path, problem.message) == (
        "services.api.image",
        f"no image named '{CYRILLIC_A}pi': '{CYRILLIC_A}pi' contains '{CYRILLIC_A}' "
        "(U+0430 CYRILLIC SMALL LETTER A), which looks like 'a'",
    )


def test_a_pattern_field_with_a_greek_letter_names_it(shop) -> None:
    bad = shop.edit("namespace: shop.local", f"namespace: sh{GREEK_OMICRON}p.local")

    [problem] = bad.problems()

    assert problem.field_path == "discovery.namespace"
    assert problem.message == (
        f"'sh{GREEK_OMICRON}p.local' contains '{GREEK_OMICRON}' "
        "(U+03BF GREEK SMALL LETTER OMICRON), which looks like 'o'"
    )


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("web", None),
        (
            "\uff57eb",
            "'\uff57eb' contains '\uff57' (U+FF57 FULLWIDTH LATIN SMALL LETTER W), "
            "which looks like 'w'",
        ),
        (
            "we\u200bb",
            "'we\\u200bb' contains '\\u200b' (U+200B ZERO WIDTH SPACE), which is invisible",
        ),
        (
            "caf\u00e9",
            "'caf\u00e9' contains '\u00e9' (U+00E9 LATIN SMALL LETTER E WITH ACUTE), "
            "which is not ASCII",
        ),
    ],
    ids=["ascii", "full-width", "zero-width space", "accented"],
)
def test_describe(text: str, said: str | None) -> None:
    assert describe(text) == said
