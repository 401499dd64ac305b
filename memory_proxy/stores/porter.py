"""The Porter stemmer exactly as SQLite's FTS5 `porter` tokenizer applies it, so that a
word stemmed here is the term the index holds: recall's relevance (relevance.py) finds
the question's terms in a memory's text and looks their counts up by these stems.

SQLite's rules (ext/fts5/fts5_tokenize.c): the original Porter algorithm over the bytes of
a token that unicode61 has folded to lower case; tokens shorter than 3 or longer than 64
bytes pass unchanged; any byte but a, e, i, o, u (and y after a consonant) is a
consonant, digits and non-ASCII letters included; one rule per step, chosen by the
longest suffix (a rule whose condition fails ends the step). tests/stores/test_porter.py
compares it with SQLite's own on every word of a corpus.
"""

from __future__ import annotations

import functools
import re
import unicodedata

MIN_BYTES, MAX_BYTES = 3, 64
_VOWELS = frozenset("aeiou")
_WORD = re.compile(r"[^\W_]+")  # letters and digits: what unicode61 keeps ("_" splits)
# ASCII text, where [a-zA-Z0-9] are all of them: folded to lower case and every other
# byte made a space by one bytes.translate, then split. A regex's findall (even a plain
# set of characters, faster than a negated category) ran ~12k instructions on a memory's
# 70 characters, this ~5k (bench_index_process: each memory's terms are counted).
_ASCII_FOLDED = bytes(
    ord(chr(byte).lower()) if chr(byte).isascii() and chr(byte).isalnum() else ord(" ")
    for byte in range(256)
)
# A Latin letter (below U+0250) with one combining mark, not followed by another.
_LATIN_WITH_ONE_MARK = re.compile(r"([A-Za-z\u00c0-\u024f])[\u0300-\u036f](?![\u0300-\u036f])")
_OTHER_FORMS = str.maketrans("µſςϐϑϕϖϰϱϵ", "μsσβθφπκρε")

# (suffix, replacement), in SQLite's order; m > 0 is each rule's condition.
_STEP2 = (
    ("ational", "ate"),
    ("tional", "tion"),
    ("enci", "ence"),
    ("anci", "ance"),
    ("izer", "ize"),
    ("logi", "log"),
    ("bli", "ble"),
    ("alli", "al"),
    ("entli", "ent"),
    ("eli", "e"),
    ("ousli", "ous"),
    ("ization", "ize"),
    ("ation", "ate"),
    ("ator", "ate"),
    ("alism", "al"),
    ("iveness", "ive"),
    ("fulness", "ful"),
    ("ousness", "ous"),
    ("aliti", "al"),
    ("iviti", "ive"),
    ("biliti", "ble"),
)
_STEP3 = (
    ("icate", "ic"),
    ("ative", ""),
    ("alize", "al"),
    ("iciti", "ic"),
    ("ical", "ic"),
    ("ful", ""),
    ("ness", ""),
)
# Removed when m > 1 ("ion" also needs s or t before it).
_STEP4 = (
    "al",
    "ance",
    "ence",
    "er",
    "ic",
    "able",
    "ible",
    "ant",
    "ement",
    "ment",
    "ent",
    "ion",
    "ou",
    "ism",
    "ate",
    "iti",
    "ous",
    "ive",
    "ize",
)


def words(text: str) -> list[str]:
    """`text`'s tokens as unicode61 folds them (lower case, a few letters' other forms
    as one, as in SQLite's case folding table; a Latin letter's one
    diacritic removed, as its remove_diacritics=1 does), before stemming."""
    if not text.isascii():
        text = text.lower()  # may be ASCII now: the Kelvin sign is a k
    if text.isascii():
        return text.encode().translate(_ASCII_FOLDED).decode().split()
    text = text.translate(_OTHER_FORMS)
    text = _LATIN_WITH_ONE_MARK.sub(_without_mark, unicodedata.normalize("NFD", text))
    text = unicodedata.normalize("NFC", text)
    return _WORD.findall(text)


def _without_mark(found: re.Match[str]) -> str:
    return found[1]


def _pattern(word: str) -> str:
    """'c' or 'v' per letter: y is a vowel after a consonant."""
    kinds = []
    consonant_before = False  # a leading y is a consonant
    for letter in word:
        vowel = letter in _VOWELS or (letter == "y" and consonant_before)
        kinds.append("v" if vowel else "c")
        consonant_before = not vowel
    return "".join(kinds)


def _measure(stem: str) -> int:
    """m: the number of vowel-consonant sequences after the leading consonants."""
    collapsed = _pattern(stem).lstrip("c")
    return collapsed.count("vc")


def _has_vowel(stem: str) -> bool:
    """*v*, where SQLite takes any y after the first letter for a vowel."""
    return any(letter in _VOWELS or (letter == "y" and i > 0) for i, letter in enumerate(stem))


def _ends_cvc(stem: str) -> bool:
    """*o: consonant, vowel, consonant, the last not w, x or y."""
    return len(stem) >= 3 and stem[-1] not in "wxy" and _pattern(stem).endswith("cvc")


def _by_penultimate(rules: tuple[tuple[str, str], ...]) -> dict[str, tuple[tuple[str, str], ...]]:
    """SQLite picks a step's candidate rules by the word's next-to-last letter, in order."""
    table: dict[str, list[tuple[str, str]]] = {}
    for suffix, replacement in rules:
        table.setdefault(suffix[-2], []).append((suffix, replacement))
    return {letter: tuple(found) for letter, found in table.items()}


# The last letters of every suffix a step looks for (1a: s; 1b: eed, ed, ing; 1c: y; 5: e,
# ll): a word ending in any other character (a number, most hex ids) passes unchanged.
_CHANGEABLE_ENDINGS = frozenset(
    "sdgyel"
    + "".join(suffix[-1] for suffix, _ in (*_STEP2, *_STEP3))
    + "".join(suffix[-1] for suffix in _STEP4)
)
_STEP2_BY = _by_penultimate(_STEP2)
_STEP3_BY = _by_penultimate(_STEP3)
_STEP4_BY = _by_penultimate(tuple((suffix, "") for suffix in _STEP4))


def _replace(word: str, rules: dict[str, tuple[tuple[str, str], ...]], min_measure: int) -> str:
    for suffix, replacement in rules.get(word[-2], ()) if len(word) > 1 else ():
        if len(word) > len(suffix) and word.endswith(suffix):
            stem = word[: -len(suffix)]
            if suffix == "ion" and not stem.endswith(("s", "t")):
                return word
            return stem + replacement if _measure(stem) >= min_measure else word
    return word


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """`word` (lower case, as the tokenizer gives it) as SQLite's porter stems it."""
    size = len(word.encode())
    if size < MIN_BYTES or size > MAX_BYTES or word[-1] not in _CHANGEABLE_ENDINGS:
        return word
    word = _step1a(word)
    word = _step1b(word)
    if word.endswith("y") and _has_vowel(word[:-1]):
        word = word[:-1] + "i"
    word = _replace(word, _STEP2_BY, 1)
    word = _replace(word, _STEP3_BY, 1)
    word = _replace(word, _STEP4_BY, 2)
    if word.endswith("e"):
        stem_ = word[:-1]
        measure = _measure(stem_)
        if measure > 1 or (measure == 1 and not _ends_cvc(stem_)):
            word = stem_
    if word.endswith("ll") and _measure(word[:-1]) > 1:
        word = word[:-1]
    return word


def _step1a(word: str) -> str:
    if not word.endswith("s"):
        return word
    if word.endswith("es"):
        if (len(word) > 4 and word[-4:-2] == "ss") or (len(word) > 3 and word[-3] == "i"):
            return word[:-2]
        return word[:-1]
    return word if word.endswith("ss") else word[:-1]


def _step1b(word: str) -> str:
    if len(word) > 3 and word.endswith("eed"):
        return word[:-1] if len(word) > 3 and _measure(word[:-3]) > 0 else word
    for suffix in ("ed", "ing"):
        if word.endswith(suffix) and len(word) > len(suffix) and _has_vowel(word[: -len(suffix)]):
            return _after_1b(word[: -len(suffix)])
    return word


def _after_1b(word: str) -> str:
    if len(word) > 2 and word.endswith(("at", "bl", "iz")):
        return word + "e"
    last = word[-1]
    if last not in _VOWELS and last not in "lsz" and len(word) > 1 and word[-2] == last:
        return word[:-1]
    if _measure(word) == 1 and _ends_cvc(word):
        return word + "e"
    return word
