"""memory_terms: the count of memories holding each term, kept beside the index, must be
the index's own (what fts5vocab reads off its doclists), through adds and forgetting,
and a file from before gets it filled at open."""

from __future__ import annotations

import collections
import sqlite3
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from memory_proxy.records.memory import MemoryRecord
from memory_proxy.stores import sqlite_term_counts as term_counts
from memory_proxy.stores.relevance import terms_of
from memory_proxy.stores.sqlite_index_scope import index_scope
from memory_proxy.stores.sqlite_term_counts import ALL_MEMORIES, CREATE, SCOPE, TABLE
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
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "memory.sqlite3"
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


def count_row_by_row(db: sqlite3.Connection, indexed: list[tuple[str, str]], change: int) -> None:
    """The counting of 082e0b6: a statement per term changed."""
    counts: collections.Counter[str] = collections.Counter()
    for text, scope in indexed:
        counts.update(terms_of(text))
        counts.update(SCOPE + token for token in scope.split())
        counts[ALL_MEMORIES] += 1
    db.executemany(
        f"INSERT INTO {TABLE} (term, memories) VALUES (?1, ?2) "
        "ON CONFLICT (term) DO UPDATE SET memories = memories + ?2",
        [(term, change * n) for term, n in counts.items()],
    )
    if change < 0:
        db.executemany(
            f"DELETE FROM {TABLE} WHERE term = ? AND memories <= 0", [(t,) for t in counts]
        )


SCOPED_TEXTS = st.lists(
    st.tuples(
        st.text(max_size=60),  # any characters: stems, folds, digits, CJK, NUL
        st.builds(index_scope, st.sampled_from(["alice", "bob"]), st.sampled_from(["a", "b"])),
    ),
    max_size=8,
)


@settings(max_examples=80, deadline=None)
@given(SCOPED_TEXTS, st.data())
def test_a_batch_is_counted_as_row_by_row_counting_did(
    added: list[tuple[str, str]], data: st.DataObject
) -> None:
    forgotten = data.draw(st.lists(st.sampled_from(added), unique=True) if added else st.just([]))
    tables = []
    for counting in (term_counts.count, count_row_by_row):
        db = sqlite3.connect(":memory:", isolation_level=None)
        db.execute(CREATE)
        counting(db, added, 1)
        counting(db, forgotten, -1)
        tables.append(dict(db.execute(f"SELECT term, memories FROM {TABLE}").fetchall()))
    assert tables[0] == tables[1]
