"""Non-ASCII characters in names, told by their Unicode names and what they look like.

A service called ``wеb`` with a Cyrillic ``е`` (U+0435) looks right and matches no
pattern; "should match pattern '^[a-z]...'" does not say why. `describe` names the
character and the ASCII letter it imitates, from Unicode's confusables data (the
``confusable_homoglyphs`` package ships it; nothing is fetched):

    describe("wеb")   # "'wеb' contains 'е' (U+0435 CYRILLIC SMALL LETTER IE), which looks like 'e'"
"""

from __future__ import annotations

import unicodedata


def describe(text: str) -> str | None:
    """What is not ASCII in ``text``, in words; None when it is all ASCII."""
    odd = list(dict.fromkeys(ch for ch in text if not ch.isascii()))
    if not odd:
        return None
    return f"{text!r} contains " + ", ".join(_character(ch) for ch in odd)


def _character(ch: str) -> str:
    name = unicodedata.name(ch, "an unnamed character")
    said = f"{ch!r} (U+{ord(ch):04X} {name})"
    if unicodedata.category(ch) in {"Cf", "Zs", "Zl", "Zp"}:
        return f"{said}, which is invisible"
    looks = _looks_like(ch)
    return f"{said}, which looks like {looks!r}" if looks else f"{said}, which is not ASCII"


def _looks_like(ch: str) -> str | None:
    folded = unicodedata.normalize("NFKC", ch)  # full-width and styled letters
    if folded.isascii():
        return folded
    # Imported here: its data loads on first use, and only a non-ASCII name needs it.
    from confusable_homoglyphs import confusables

    found = confusables.is_confusable(ch, greedy=True, preferred_aliases=["latin", "common"])
    for entry in found or []:
        for glyph in entry["homoglyphs"]:
            if glyph["c"].isascii():
                return str(glyph["c"])
    return None
