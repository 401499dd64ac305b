"""Stored text meeting the tags the proxy writes around it, both ways.

Into a request: stored text is escaped so that it can never open or close a tag, however
a model might read one — `<`, `>` and their look-alikes (full-width, small, angle quotes
and brackets, arrowheads) become character references, and so do invisible characters,
which can hide words inside a tag's name or smuggle text a reader never sees.

Out of what is stored: a tag is looked for in a folded view of the text, one character
for each of the text's (NFKC-normalised, lower case), with patterns that let look-alike
brackets and hyphens and invisible characters stand where a tag has its own, so that
`</MEMORY>`, `＜/memory＞` or a name with a zero-width space inside are found too.
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
# Patterns over a folded view: a tag's brackets and the gaps its parts may hold.
LESS_THAN = f"[{LESS_THAN_LOOKALIKES}]"
GREATER_THAN = f"[{GREATER_THAN_LOOKALIKES}]"
NOT_A_BRACKET = f"[^{LESS_THAN_LOOKALIKES}{GREATER_THAN_LOOKALIKES}]"
GAP = f"[{INVISIBLE}]*"

_ESCAPED = re.compile(f"[&{LESS_THAN_LOOKALIKES}{GREATER_THAN_LOOKALIKES}{INVISIBLE}]")
_NAMED = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_INVISIBLE = re.compile(f"[{INVISIBLE}]")


def escaped(text: str) -> str:
    """`text` with no character that could open or close a tag: `&`, `<`, `>` as XML
    writes them, look-alikes and invisible characters as numeric references (so the text
    reads back exactly, with `html.unescape`). ASCII text (most memories) holds no
    look-alike and no invisible character: its three are replaced without the pattern,
    which scans a memory of ~400 characters in ~6 us."""
    if text.isascii():
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _ESCAPED.sub(_reference, text)


def _reference(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or f"&#x{ord(char):x};"


def tolerant(word: str) -> str:
    """A pattern for `word` (lower-case ASCII) in a folded view: invisible characters may
    stand between its letters, and any hyphen look-alike for its hyphens."""
    letters = (
        f"[{re.escape(HYPHEN_LOOKALIKES)}]" if letter == "-" else re.escape(letter)
        for letter in word
    )
    return GAP.join(letters)


def folded(text: str) -> str:
    """`text` as tags are looked for in it, character for character: lower case and
    NFKC-normalised (a full-width letter becomes the letter, a character that would become
    several becomes U+FFFD, which no tag holds)."""
    if text.isascii():
        return text.lower()
    if unicodedata.is_normalized("NFKC", text):
        view = text.lower()
        if len(view) == len(text):
            return view
    return text.translate(_FOLDS)


def might_hold(text: str, pattern: re.Pattern[str]) -> bool:
    """A quick test, cheaper than folding character by character: could the folded
    `text` hold a match of `pattern`, a `tolerant` word?"""
    if text.isascii():
        return pattern.search(text.lower()) is not None
    return pattern.search(unicodedata.normalize("NFKC", text).lower()) is not None


def holds_no_tag(text: str) -> bool:
    """True for ASCII text without `<`: no tag can be in it, opening or closing, since every
    look-alike of its bracket lies outside ASCII; nothing in it needs stripping. False says
    nothing either way."""
    return text.isascii() and "<" not in text


class _Folds(dict[int, str]):
    """Each character's fold, worked out the first time it is met (`str.translate` asks
    for each character of the text); at most `_MAX_FOLDS_KEPT` are kept."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        fold = char if _INVISIBLE.match(char) else unicodedata.normalize("NFKC", char).lower()
        if len(fold) != 1:
            fold = _UNMATCHABLE
        if len(self) < _MAX_FOLDS_KEPT:
            self[code] = fold
        return fold


_UNMATCHABLE = "\ufffd"
_MAX_FOLDS_KEPT = 65_536
_FOLDS = _Folds()
