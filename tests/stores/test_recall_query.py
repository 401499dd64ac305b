"""From a message to an FTS5 query (stores/recall_query.py): the topic words kept, any text a
safe phrase, the words asked for as any of them; and the index's search by the share of
the question's weight and with any query text."""

from __future__ import annotations

import sqlite3

from hypothesis import given, settings
from hypothesis import strategies as st

from memory_proxy.stores.recall_query import (
    MAX_TERMS,
    fts5_phrase,
    fts5_words,
    plainly_no_terms,
    query_terms,
)
from memory_proxy.stores.relevance import covered_share, weight
from tests.stores.sqlite_index_support import BlankIndexes, Index, memory

FTS5_SYNTAX = [
    '"',
    "AND",
    "OR",
    "NOT",
    "NEAR",
    "(",
    ")",
    "*",
    "^",
    ":",
    "-",
    "{",
    "}",
    "\0",
    "port",
]


def test_query_terms_drop_filler_and_repeats_and_are_capped() -> None:
    assert query_terms("Can you please remind me how we DEPLOY, deploy the_app?") == [
        "deploy",
        "app",
    ]
    assert query_terms("port 5433 x 2") == ["port", "5433", "2"]
    assert len(query_terms(" ".join(f"word{n}" for n in range(100)))) == MAX_TERMS


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=40), min_size=1, max_size=20))
def test_query_terms_read_again_are_the_same_and_each_caller_s_own(texts: list[str]) -> None:
    """The terms are looked up when read again (recall, then the index's search): the
    same as read first, whatever was read between, and a list no other caller shares."""
    first = [query_terms(text) for text in texts]
    for text, terms in zip(texts, first, strict=True):
        again = query_terms(text)
        assert again == terms
        again.append("changed")
        assert query_terms(text) == terms


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_any_string_is_a_safe_fts5_phrase(text: str) -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5 (body, tokenize='porter unicode61')")
    db.execute("INSERT INTO t VALUES (?)", (text,))
    db.execute("SELECT count(*) FROM t WHERE t MATCH ?", (fts5_phrase(text),)).fetchall()
    db.close()


def test_the_words_are_asked_for_as_any_of_them() -> None:
    """An implicit AND finds nothing for a question asked in other words; BM25 ranks
    the matches and relevance gates them."""
    assert fts5_words(["port"]) == '"port"'
    assert fts5_words(["staging", "port"]) == '"staging" OR "port"'


def test_min_share_leaves_out_memories_holding_too_few_of_the_words(index: Index) -> None:
    index.add(
        memory("the staging database runs on port 5433"),
        memory("the staging cluster is in Frankfurt"),
        memory("the database backups run nightly"),
    )

    def found(min_share: float) -> list[str]:
        query = "staging database port"
        hits = index(lambda i: i.search("alice", "shop", query, limit=5, min_share=min_share))
        return sorted(hit.record.text for hit in hits)

    assert len(found(0.0)) == 3
    assert found(0.6) == ["the staging database runs on port 5433"]  # 2 of 3 words
    assert found(1.0) == ["the staging database runs on port 5433"]


def test_once_a_memory_covers_min_share_those_covering_fill_share_come_too(index: Index) -> None:
    """What recall fills an answered question's block with; a question no memory answers
    finds nothing, however much of it the others cover."""
    index.add(
        memory("the staging database runs on port 5433"),
        memory("the staging cluster is in Frankfurt"),
        memory("the database backups run nightly"),
    )

    def found(query: str) -> list[str]:
        hits = index(
            lambda i: i.search("alice", "shop", query, limit=5, min_share=0.6, fill_share=0.2)
        )
        return sorted(hit.record.text for hit in hits)

    assert len(found("staging database port")) == 3
    assert found("staging database in Tokyo") == []


def test_min_share_keeps_the_memories_covering_that_share_of_the_questions_weight(
    blank_index: BlankIndexes,
) -> None:
    """Exactly those, each word weighted by how few memories hold it (relevance.py), on
    every index: PostgreSQL weighs the words as SQLite does. Memories of another user
    count in the weights (the index's own counts) and are never found. With a
    `fill_share`, once one covers `min_share`, those covering `fill_share`."""

    @settings(max_examples=100, deadline=None)
    @given(
        st.lists(st.lists(st.sampled_from(["ab", "cd", "ef", "gh", "ij"]), min_size=1), max_size=8),
        st.lists(st.sampled_from(["ab", "cd", "ef", "gh", "ij"]), min_size=1, unique=True),
        st.sampled_from([0.0, 0.3, 0.5, 0.6, 0.8, 1.0]),
        st.lists(st.sampled_from(["ab", "cd", "ef"]), max_size=3),
        st.sampled_from([None, 0.0, 0.2]),
    )
    def weighed(
        texts: list[list[str]],
        query: list[str],
        min_share: float,
        others: list[str],
        fill_share: float | None,
    ) -> None:
        with blank_index() as opened:
            opened.add(*(memory(" ".join(words), session=None) for words in texts))
            opened.add(*(memory(word, user="bob") for word in others))
            hits = opened(
                lambda i: i.search(
                    "alice",
                    "shop",
                    " ".join(query),
                    limit=50,
                    min_share=min_share,
                    fill_share=fill_share,
                )
            )
            found = sorted(hit.record.text for hit in hits)
        distinct = {" ".join(words): set(words) for words in texts}
        every = [*distinct.values(), *({word} for word in set(others))]
        weights = {
            term: weight(sum(term in words for words in every), len(every)) for term in query
        }
        shares = {
            text: covered_share(weights, text)
            for text, words in distinct.items()
            if words & set(query)
        }
        needed = min_share
        if fill_share is not None and any(s >= min_share - 1e-9 for s in shares.values()):
            needed = fill_share
        assert found == sorted(text for text, share in shares.items() if share >= needed - 1e-9)

    weighed()


def test_any_query_text_is_safe_and_stays_with_its_user(blank_index: BlankIndexes) -> None:
    """On every index (SQLite's FTS5 syntax, PostgreSQL's tsquery)."""
    with blank_index() as opened:
        opened.add(memory("AND OR NOT NEAR ( ) * ^ : \" ' - + the staging port", user="alice"))
        opened.add(memory("AND OR NOT NEAR ( ) * ^ : \" ' - + the staging port", user="bob"))

        @settings(max_examples=300, deadline=None)
        @given(st.text() | st.lists(st.sampled_from(FTS5_SYNTAX)).map(" ".join))
        def search_anything(text: str) -> None:
            hits = opened(lambda i: i.search("alice", None, text, limit=5, exclude_session=text))
            assert all(hit.record.user_id == "alice" for hit in hits)

        search_anything()


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.text(max_size=60),
        st.lists(
            st.sampled_from(["hi", "Thanks", "you", "deploy", "x", "5", "42", "_", "é", " ", "!"]),
            max_size=10,
        ).map(" ".join),
    )
)
def test_plainly_no_terms_is_query_terms_finding_none_in_ascii_text(text: str) -> None:
    assert plainly_no_terms(text) == (text.isascii() and query_terms(text) == [])


def test_plainly_no_terms_of_chat_filler() -> None:
    assert plainly_no_terms("hi") and plainly_no_terms("Thanks, that's all!")
    assert not plainly_no_terms("deploy") and not plainly_no_terms("port 5")
    assert not plainly_no_terms("héllo")  # not ASCII: not decided here
