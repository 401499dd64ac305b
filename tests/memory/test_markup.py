from __future__ import annotations

import html
import re
import sys
import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory_proxy.memory.markup import (
    GREATER_THAN_LOOKALIKES,
    INVISIBLE,
    LESS_THAN_LOOKALIKES,
    escaped,
    folded,
    loose,
    might_hold,
)
from tests.memory.recall_support import stored_texts

EVERY_CHARACTER = [chr(code) for code in range(sys.maxunicode + 1)]
# Format characters that are seen (Unicode does not count them as default-ignorable):
# prepended concatenation marks, interlinear annotation, Egyptian hieroglyph controls.
VISIBLE_FORMAT = re.compile(
    "[\u0600-\u0605\u06dd\u070f\u0890\u0891\u08e2\U000110bd\U000110cd\ufff9-\ufffb"
    "\U00013430-\U0001343f]"
)
_INVISIBLE = re.compile(f"[{INVISIBLE}]")


def test_every_bracket_that_normalises_to_one_of_a_tags_is_a_known_look_alike() -> None:
    for char in EVERY_CHARACTER:
        normal = unicodedata.normalize("NFKC", char)
        if "<" in normal and len(normal) == 1:
            assert char in LESS_THAN_LOOKALIKES, hex(ord(char))
        if ">" in normal and len(normal) == 1:
            assert char in GREATER_THAN_LOOKALIKES, hex(ord(char))


def test_every_unseen_format_character_counts_as_invisible() -> None:
    for char in EVERY_CHARACTER:
        if unicodedata.category(char) == "Cf" and not VISIBLE_FORMAT.match(char):
            assert _INVISIBLE.match(char), hex(ord(char))


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # huge texts: slow
@given(stored_texts() | st.text())
def test_escaped_text_holds_no_bracket_and_reads_back_exactly(text: str) -> None:
    safe = escaped(text)
    view, _ = folded(safe)
    assert "<" not in view and ">" not in view
    assert not _INVISIBLE.search(safe)
    assert html.unescape(safe) == text


def test_folding_finds_tags_however_they_are_spelled_and_where_they_were() -> None:
    assert folded("</MEMORY>") == ("</memory>", None)
    view, origins = folded("\uff1c/\uff2d\u200bemory\u3009!")
    assert view == "</memory>!"
    assert origins == [0, 1, 2, 4, 5, 6, 7, 8, 9, 10]
    assert folded("caf\u00e9 \ufb01") == ("caf\u00e9 \ufffd", None)  # a ligature matches no name


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stored_texts())
def test_the_quick_test_misses_no_word_that_folding_finds(text: str) -> None:
    word = "recalled-memories"
    if word in folded(text)[0]:
        assert might_hold(text, loose(word))
