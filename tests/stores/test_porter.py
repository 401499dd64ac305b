"""porter.py against SQLite's own `porter unicode61` tokenizer: a word stemmed here must be
the term the index holds, or relevance would miss what the index found."""

import re
import sqlite3

from hypothesis import given, settings
from hypothesis import strategies as st

from memory_proxy.stores import porter
from scripts.recall_dataset import build
from scripts.recall_history import build_dataset


def sqlite_terms(db: sqlite3.Connection, text: str) -> set[str]:
    db.execute("DELETE FROM t")
    db.execute("INSERT INTO t (body) VALUES (?)", (text,))
    return {term for (term,) in db.execute("SELECT term FROM v")}


def tokenizer() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5 (body, tokenize='porter unicode61')")
    db.execute("CREATE VIRTUAL TABLE v USING fts5vocab (t, row)")
    return db


def ours(text: str) -> set[str]:
    return {porter.stem(word) for word in porter.words(text)}


def test_every_word_of_the_benchmarks_is_stemmed_as_sqlite_stems_it() -> None:
    dataset = build_dataset(users=2)
    texts = [f"{e.question}\n{e.answer}" for e in dataset.exchanges]
    texts += [q.text for q in (*dataset.questions, *dataset.off_topic)]
    texts += [r.text for r in build().records]
    words = " ".join(texts).split()
    db = tokenizer()
    for start in range(0, len(words), 200):  # a few hundred words a row: fast, and exact
        text = " ".join(words[start : start + 200])
        assert ours(text) == sqlite_terms(db, text), text


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.text(alphabet="abcdefghijklmnopqrstuvwxyzyyeeiiss0123456789éüÄ", min_size=1),
        min_size=1,
        max_size=6,
    ).map(" ".join)
)
def test_any_words_are_stemmed_as_sqlite_stems_them(text: str) -> None:
    assert ours(text) == sqlite_terms(tokenizer(), text)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.text(alphabet="0123456789abcdefhkopqwxz", min_size=1, max_size=40),
        min_size=1,
        max_size=8,
    ).map(" ".join)
)
def test_ids_and_numbers_are_stemmed_as_sqlite_stems_them(text: str) -> None:
    """Hex ids, numbers and words ending in a letter no rule's suffix ends with: passed
    through unchanged, at no cost (each is new to the stems kept)."""
    assert ours(text) == sqlite_terms(tokenizer(), text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=[chr(c) for c in range(128)], max_size=120))
def test_any_ascii_text_is_split_and_stemmed_as_sqlite_does(text: str) -> None:
    """Punctuation, "_", controls and digits among words: ASCII text is split by a plain
    set of characters, to the same words."""
    assert ours(text) == sqlite_terms(tokenizer(), text)


def _regex_words(text: str) -> list[str]:
    """porter.words as it was before bytes.translate (1d3743b): ASCII text's words found
    by a regex after lower()."""
    lowered = text.lower()
    if lowered.isascii():
        return re.findall(r"[a-zA-Z0-9]+", lowered)
    return porter.words(lowered)  # the path for other text is unchanged


@settings(max_examples=500, deadline=None)
@given(
    st.text(alphabet=[chr(c) for c in range(128)], max_size=200)
    | st.text(alphabet=[*map(chr, range(128)), "\u212a", "\u0130", "é", "ſ", "\u00a0"])
)
def test_words_are_split_as_the_regex_split_them(text: str) -> None:
    """The same words in the same order (counted and indexed from them), for ASCII text
    and for text whose lower case is ASCII (the Kelvin sign)."""
    assert porter.words(text) == _regex_words(text)
