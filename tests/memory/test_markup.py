from __future__ import annotations

import html
import re
import sys
import unicodedata
from collections.abc import Iterator

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory_proxy.memory.markup import (
    GREATER_THAN_LOOKALIKES,
    INVISIBLE,
    LESS_THAN_LOOKALIKES,
    escaped,
    folded,
    holds_no_tag,
    might_hold,
    tolerant,
)
from tests.memory.recall_support import as_read, stored_texts


def every_character() -> Iterator[str]:
    """Each code point, made as it is asked for: a list of all 1.1 million, made when the
    module is imported (every pytest-xdist worker imports every test module), was walked by
    each full pass of the garbage collector of each worker, for the whole run."""
    return map(chr, range(sys.maxunicode + 1))


# Format characters that are seen (Unicode does not count them as default-ignorable):
# prepended concatenation marks, interlinear annotation, Egyptian hieroglyph controls.
VISIBLE_FORMAT = re.compile(
    "[\u0600-\u0605\u06dd\u070f\u0890\u0891\u08e2\U000110bd\U000110cd\ufff9-\ufffb"
    "\U00013430-\U0001343f]"
)
_INVISIBLE = re.compile(f"[{INVISIBLE}]")


def test_every_bracket_that_normalises_to_one_of_a_tags_is_a_known_look_alike() -> None:
    for char in every_character():
        normal = unicodedata.normalize("NFKC", char)
        if "<" in normal and len(normal) == 1:
            assert char in LESS_THAN_LOOKALIKES, hex(ord(char))
        if ">" in normal and len(normal) == 1:
            assert char in GREATER_THAN_LOOKALIKES, hex(ord(char))


def test_every_unseen_format_character_counts_as_invisible() -> None:
    for char in every_character():
        if unicodedata.category(char) == "Cf" and not VISIBLE_FORMAT.match(char):
            assert _INVISIBLE.match(char), hex(ord(char))


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # huge texts: slow
@given(stored_texts() | st.text())
def test_escaped_text_holds_no_bracket_and_reads_back_exactly(text: str) -> None:
    safe = escaped(text)
    assert "<" not in as_read(safe) and ">" not in as_read(safe)
    assert not _INVISIBLE.search(safe)
    assert html.unescape(safe) == text


@given(st.text(alphabet=st.characters(max_codepoint=127)) | stored_texts() | st.text())
def test_ascii_text_is_escaped_as_the_pattern_escapes_any_text(text: str) -> None:
    by_pattern = re.sub(
        f"[&{LESS_THAN_LOOKALIKES}{GREATER_THAN_LOOKALIKES}{INVISIBLE}]",
        lambda found: (
            {"&": "&amp;", "<": "&lt;", ">": "&gt;"}.get(found.group())
            or f"&#x{ord(found.group()):x};"
        ),
        text,
    )
    assert escaped(text) == by_pattern


def test_the_folded_view_keeps_every_place() -> None:
    assert folded("</MEMORY>") == "</memory>"
    assert folded("\uff1c/\uff2d\u200bEMORY\u3009!") == "</m\u200bemory\u3009!"  # the slow way
    assert folded("\u041f\u0440\u0438 </MEMORY\u200b>") == "\u043f\u0440\u0438 </memory\u200b>"
    assert folded("caf\u00e9 \ufb01 \u0130") == "caf\u00e9 \ufffd \ufffd"  # no name holds these


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stored_texts())
def test_the_view_is_as_long_as_the_text_and_the_quick_test_misses_nothing(text: str) -> None:
    view = folded(text)
    assert len(view) == len(text)
    name = re.compile(tolerant("recalled-memories"))
    if name.search(view):
        assert might_hold(text, name)


def test_no_tag_in_ascii_without_a_less_than_sign() -> None:
    """holds_no_tag's premise: `<` is the only look-alike of a tag's opening bracket in
    ASCII, so ASCII text without it holds none, as the folded view would find."""
    assert [c for c in LESS_THAN_LOOKALIKES if c.isascii()] == ["<"]
    assert holds_no_tag("hi, what is 2 > 1?")
    assert not holds_no_tag("a </memory> b")
    assert not holds_no_tag("\uff1c/memory\uff1e")  # full-width: not ASCII, so no answer
