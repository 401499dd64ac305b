"""PostgreSQL's index holds SQLite's terms and ranks as SQLite does (issue 23: the same
recall quality on both): its words are porter stems, its counts (`memory_terms`) are the
SQLite file's through adds and forgetting, kept by the statements that add and forget
(two indexes at once included), its BM25 scores are FTS5's, and a database indexed by
PostgreSQL's `english` configuration before is re-indexed once."""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory_proxy.records.memory import MemoryRecord
from memory_proxy.stores import porter
from memory_proxy.stores.packed_text import pack
from memory_proxy.stores.postgres_database import migrate
from memory_proxy.stores.postgres_index import PostgresMemoryIndex
from memory_proxy.stores.postgres_index_schema import MIGRATIONS
from memory_proxy.stores.postgres_term_counts import (
    MAX_LEXEME_BYTES,
    TABLE,
    TOKENS,
    tsvector_of,
)
from memory_proxy.stores.relevance import terms_of
from memory_proxy.stores.sqlite_term_counts import SCOPE
from tests.stores.sqlite_index_support import (
    FORGETTING,
    LOADED_MACHINE,
    WORDS,
    BlankIndexes,
    Index,
    forget,
    memory,
    stored_memories,
)

QUESTIONS = ["deploy heron", "staging port 5433", "the café", "ports of the heron staging"]


def kept(url: str) -> dict[str, int]:
    with psycopg.connect(url) as db:
        return dict(db.execute(f"SELECT term, memories FROM {TABLE}").fetchall())


def recounted(url: str) -> dict[str, int]:
    """The counts read off the memories' words as they are."""
    with psycopg.connect(url) as db:
        terms = db.execute(
            "SELECT term, count(*) FROM memories, unnest(tsvector_to_array(words)) AS term "
            "GROUP BY term"
        ).fetchall()
        totals = db.execute("SELECT count(*), sum(length) FROM memories").fetchone()
    assert totals is not None
    memories, tokens = totals
    return dict(terms) | ({"": memories, TOKENS: tokens} if memories else {})


def sqlites_own(path: Path) -> dict[str, int]:
    """The SQLite file's counts, its scope tokens left out (PostgreSQL scopes in SQL)."""
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT term, memories FROM memory_terms").fetchall()
    return {term: count for term, count in rows if not term.startswith(SCOPE)}


def test_any_text_is_indexed_as_its_porter_terms(postgres_url: str) -> None:
    """Stored text is open-ended: any is a tsvector PostgreSQL takes, holding the terms
    SQLite's tokenizer makes (but for words longer than a lexeme may be)."""
    with psycopg.connect(postgres_url) as db:

        @settings(max_examples=100, deadline=None)
        @given(
            st.text(max_size=300)
            | st.lists(st.sampled_from([*WORDS, "x" * 3000, "é" * 1100, "a"]), max_size=300).map(
                " ".join
            )
        )
        def indexed(text: str) -> None:
            words, length = tsvector_of(text)
            row = db.execute("SELECT tsvector_to_array(%s::tsvector)", (words,)).fetchone()
            assert row is not None
            held = {term for term in terms_of(text) if len(term.encode()) <= MAX_LEXEME_BYTES}
            assert set(row[0]) == held
            assert length == len(porter.words(text))

        indexed()


def test_the_counts_and_the_scores_are_sqlites(postgres_url: str) -> None:
    """The same memories added to both and forgotten alike: the same counts, and the
    same hits with the same scores and shares."""

    postgres_indexes = BlankIndexes(postgres_url)

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(stored_memories(), st.sampled_from(FORGETTING))
    def alike(records: list[MemoryRecord], forgetting: str) -> None:
        with tempfile.TemporaryDirectory() as directory:
            sqlite_path = Path(directory) / "memory.sqlite3"
            found = [
                _added_and_forgotten(blank, records, forgetting)
                for blank in (BlankIndexes(sqlite_path), postgres_indexes)
            ]
            sqlites_counts = sqlites_own(sqlite_path)
        counts = kept(postgres_url)
        assert counts == recounted(postgres_url)  # no row left for a forgotten word
        assert {term: n for term, n in counts.items() if term != TOKENS} == sqlites_counts
        for sqlites, postgres in zip(*found, strict=True):
            assert [text for text, _, _ in sqlites] == [text for text, _, _ in postgres]
            for (_, *numbers), (_, *others) in zip(sqlites, postgres, strict=True):
                assert numbers == pytest.approx(others, rel=1e-12, abs=0)

    try:
        alike()
    finally:
        postgres_indexes.close()


def _added_and_forgotten(
    blank: BlankIndexes, records: list[MemoryRecord], forgetting: str
) -> list[list[tuple[str, float, float]]]:
    """`records` added to a blank index and some forgotten; then each question's hits."""
    with blank() as index:
        index.add(*records)
        forget(index, records, forgetting)
        return [_hits(index, question) for question in QUESTIONS]


def _hits(index: Index, question: str) -> list[tuple[str, float, float]]:
    """alice's shop's memories found for `question`, each with its score and share (the
    same but for the last bit or two: FTS5 sums a score's parts in its own order)."""
    hits = index(lambda i: i.search("alice", "shop", question, limit=50))
    return sorted((h.record.text, h.score, h.relevance or 0.0) for h in hits)


def test_two_indexes_adding_and_forgetting_at_once_keep_the_counts(postgres_url: str) -> None:
    """Two proxies on one database: their statements wait for each other's term rows,
    in one order, and never deadlock."""

    async def run() -> None:
        first = PostgresMemoryIndex(postgres_url, LOADED_MACHINE)
        second = PostgresMemoryIndex(postgres_url, LOADED_MACHINE)
        try:
            batches = [
                [memory(f"{' '.join(WORDS[k:] + WORDS[:k])} note {n}-{k}") for n in range(20)]
                for k in range(len(WORDS))
            ]
            await asyncio.gather(
                *(
                    (first if k % 2 else second).add(batch)
                    for k, batch in enumerate(batches * 2)  # each batch twice: added once
                ),
                second.forget_oldest(15),
                first.forget_older_than(1e12, 5),
            )
        finally:
            await first.aclose()
            await second.aclose()

    asyncio.run(run())
    assert kept(postgres_url) == recounted(postgres_url)


def test_a_database_indexed_by_the_english_configuration_is_reindexed(
    postgres_url: str,
) -> None:
    migrate(postgres_url, "memories", MIGRATIONS[:1])
    texts = ["We deployed the heron service", "the staging ports are 5433 and 5434", "café"]
    with psycopg.connect(postgres_url) as db:
        for n, text in enumerate(texts):
            record = memory(text, at=n)
            db.execute(
                "INSERT INTO memories (id, user_id, project, session_id, client, model, "
                "created_at, text, private, words) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, false, to_tsvector('english', %s))",
                (record.id, "alice", "shop", "s1", "curl", "m", n, pack(text), text),
            )
    opened = Index(postgres_url)
    try:
        assert opened.texts("alice", "shop", "deploying heron") == [texts[0]]
        assert opened.texts("alice", "shop", "ports") == [texts[1]]
    finally:
        opened.close()
    assert kept(postgres_url) == recounted(postgres_url)
    with psycopg.connect(postgres_url) as db:
        rows = db.execute("SELECT words::text FROM memories ORDER BY created_at").fetchall()
    assert [words for (words,) in rows] == [_canonical(postgres_url, text) for text in texts]


def _canonical(url: str, text: str) -> str:
    with psycopg.connect(url) as db:
        row = db.execute("SELECT %s::tsvector::text", (tsvector_of(text)[0],)).fetchone()
    assert row is not None
    return str(row[0])
