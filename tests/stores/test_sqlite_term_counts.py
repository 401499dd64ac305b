"""memory_terms: the count of memories holding each term, kept beside the index, must be
the index's own (what fts5vocab reads off its doclists), through adds and forgetting,
and a file from before gets it filled at open."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from memory_proxy.records.memory import MemoryRecord
from memory_proxy.stores.sqlite_term_counts import ALL_MEMORIES, SCOPE, TABLE
from tests.stores.sqlite_index_support import FORGETTING, Index, forget, memory, stored_memories


def kept(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        return dict(db.execute(f"SELECT term, memories FROM {TABLE}").fetchall())


def read_off_the_index(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        db.execute("CREATE VIRTUAL TABLE temp.v USING fts5vocab (main, memories_fts, col)")
        counts = {
            (SCOPE if col == "scope" else "") + term: doc
            for term, col, doc in db.execute("SELECT term, col, doc FROM temp.v")
        }
        (memories,) = db.execute("SELECT COUNT(*) FROM memories").fetchone()
    return counts | ({ALL_MEMORIES: memories} if memories else {})


@settings(max_examples=40, deadline=None)
@given(stored_memories(), st.sampled_from(FORGETTING))
def test_the_counts_are_the_indexs_own_through_adding_and_forgetting(
    records: list[MemoryRecord], forgetting: str
) -> None:
    directory = Path(__import__("tempfile").mkdtemp())
    path = directory / "memory.sqlite3"
    index = Index(path)
    try:
        index.add(*records)
        forget(index, records, forgetting)
    finally:
        index.close()
    assert kept(path) == read_off_the_index(path)  # no row left for a forgotten word


def test_a_file_from_before_gets_its_counts_at_open(tmp_path: Path) -> None:
    path = tmp_path / "memory.sqlite3"
    first = Index(path)
    first.add(memory("deploying heron to staging"), memory("the staging port is 5433", user="bob"))
    first.close()
    expected = kept(path)
    with sqlite3.connect(path) as db:
        db.execute(f"DROP TABLE {TABLE}")  # as the files before it were: at version 1
        db.execute("UPDATE schema_versions SET version = 1 WHERE part = 'memories'")
    second = Index(path)
    try:
        assert second.texts("alice", "shop", "heron at staging") == ["deploying heron to staging"]
    finally:
        second.close()
    assert kept(path) == expected
