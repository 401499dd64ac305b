"""Stored text meeting the tags the proxy writes around it, both ways.

Into a request: stored text is escaped so that it can never open or close a tag, however
a model might read one — `<`, `>` and their look-alikes (full-width, small, angle quotes
and brackets, arrowheads) become character references, and so do invisible characters,
which can hide words inside a tag's name or smuggle text a reader never sees.

Out of what is stored: a tag is looked for in a folded view of the text (each character
NFKC-normalised and case-folded, look-alikes made plain, invisible characters dropped),
so `</MEMORY>`, `＜/memory＞` or a name with a zero-width space inside are found too.
"""

from __future__ import annotations

import re
import unicodedata

LESS_THAN_LOOKALIKES = "<\u02c2\u1438\u16b2\u2039\u2329\u276e\u27e8\u3008\ufe64\uff1c\U0001d236"
GREATER_THAN_LOOKALIKES = (
    ">\u02c3\u1433\u203a\u232a\u276f\u27e9\u3009\ufe65\uff1e\U00016f3f\U0001d237"
)
HYPHEN_LOOKALIKES = "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\uff0d"
# Unicode's default-ignorable code points: shown as nothing, yet read by models.
INVISIBLE = (
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0000-\U000e0fff"
)
_ESCAPED = re.compile(f"[&{LESS_THAN_LOOKALIKES}{GREATER_THAN_LOOKALIKES}{INVISIBLE}]")
_NAMED = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_INVISIBLE = re.compile(f"[{INVISIBLE}]")
_PLAIN = str.maketrans(
    dict.fromkeys(LESS_THAN_LOOKALIKES, "<")
    | dict.fromkeys(GREATER_THAN_LOOKALIKES, ">")
    | dict.fromkeys(HYPHEN_LOOKALIKES, "-")
)


def escaped(text: str) -> str:
    """`text` with no character that could open or close a tag: `&`, `<`, `>` as XML
    writes them, look-alikes and invisible characters as numeric references (so the text
    reads back exactly, with `html.unescape`)."""
    return _ESCAPED.sub(_reference, text)


def _reference(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or f"&#x{ord(char):x};"


def folded(text: str) -> tuple[str, list[int] | None]:
    """`text` as tags are looked for in it, and for each folded character the index of the
    original one it comes from (None: the same index, as when nothing was dropped)."""
    if text.isascii():
        return text.lower(), None
    view = text.translate(_FOLDS)
    if _DROPPED not in view:
        return view, None
    origins: list[int] = []
    for run in _KEPT_RUN.finditer(view):
        origins.extend(range(run.start(), run.end()))
    return view.replace(_DROPPED, ""), origins


def loose(word: str) -> re.Pattern[str]:
    """A pattern for `word` in the text `might_hold` looks at: NFKC-normalised and
    case-folded, but with invisible characters and look-alike hyphens left in."""
    letters = (
        f"[{re.escape(HYPHEN_LOOKALIKES)}]" if letter == "-" else re.escape(letter)
        for letter in word
    )
    return re.compile(f"[{INVISIBLE}]*".join(letters))


def might_hold(text: str, word: re.Pattern[str]) -> bool:
    """A quick test, without `folded`'s work per character: could the folded `text` hold
    the `loose` `word`?"""
    plain = text.lower() if text.isascii() else unicodedata.normalize("NFKC", text).casefold()
    return word.search(plain) is not None


class _Folds(dict[int, str]):
    """Each character's fold, one character long (so that `str.translate` keeps the
    places): NFKC-normalised, case-folded, a look-alike made plain; an invisible character
    becomes `_DROPPED`, one that folds to several characters `_UNMATCHABLE` (no tag's name
    holds a ligature). Worked out the first time a character is met."""

    def __missing__(self, code: int) -> str:
        fold = unicodedata.normalize("NFKC", chr(code)).casefold().translate(_PLAIN)
        fold = _INVISIBLE.sub("", fold)
        if len(fold) != 1:
            fold = _UNMATCHABLE if fold else _DROPPED
        if len(self) < _MAX_FOLDS_KEPT:
            self[code] = fold
        return fold


_DROPPED = "\u200b"  # invisible itself: text that holds it loses it when folded, alike
_UNMATCHABLE = "\ufffd"
_MAX_FOLDS_KEPT = 65_536
_FOLDS = _Folds({code: chr(code).lower() for code in range(128)})
_KEPT_RUN = re.compile(f"[^{_DROPPED}]+")
