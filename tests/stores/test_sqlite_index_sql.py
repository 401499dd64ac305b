"""The search's statements read in one row (sqlite_index_sql.py): the same seqs, scores,
marks and records as the plain statements row by row, for any stored text."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory_proxy.stores.sqlite_index_sql import (
    RECORD_COLUMNS,
    SCORE,
    ranked,
    record,
    rows_by_seq,
)
from memory_proxy.stores.sqlite_replaced import WatchedConnection
from tests.stores.sqlite_index_support import Index, memory

ROW_BY_ROW = f"""
SELECT best.rowid, best.score,
       (?2 IS NULL OR m.user_id = ?2) AND (?3 IS NULL OR m.project = ?3)
       AND (?4 IS NULL OR m.session_id IS NOT ?4) AND (?6 OR m.private = 0), m.id
FROM (SELECT rowid, {SCORE} AS score FROM memories_fts WHERE memories_fts MATCH ?1
      ORDER BY score DESC LIMIT ?7) AS best
JOIN memories m ON m.seq = best.rowid
ORDER BY best.score DESC
"""
WORDS = ["deploy", "deployed", "port", "heron", "Staging", "café", "5433", "the", "a"]
texts = st.lists(st.sampled_from(WORDS), min_size=1, max_size=8).map(" ".join) | st.text(
    min_size=1, max_size=60
).map(lambda text: "port " + text)


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    stored=st.lists(
        st.tuples(texts, st.sampled_from(["alice", "bob"]), st.sampled_from(["s1", "s2"])),
        min_size=1,
        max_size=30,
    ),
    taken=st.integers(1, 40),
    private_too=st.booleans(),
)
def test_one_row_reads_what_the_rows_say(
    tmp_path: Path, stored: list[tuple[str, str, str]], taken: int, private_too: bool
) -> None:
    path = tmp_path / f"memory-{threading.get_ident()}-{abs(hash(tuple(stored)))}.sqlite3"
    index = Index(path)
    try:
        index.add(*(memory(text, user=user, session=session) for text, user, session in stored))
        db = index.sqlite._db
        params = ('text : ("port" OR "deploy")', "alice", "shop", "s1", 5, private_too, taken)
        plain = [
            (seq, score, bool(mark), id_)
            for seq, score, mark, id_ in db.execute(ROW_BY_ROW, params)
        ]
        assert ranked(db, params) == plain
        # one gone since it was ranked, one whose seq holds another memory now
        asked = [(seq, id_) for seq, _, _, id_ in plain] + [(10_000, "gone")]
        if plain:
            asked[0] = (asked[0][0], "another")
        by_row = {
            seq: tuple(row)
            for seq, *row in db.execute(f"SELECT seq, {RECORD_COLUMNS} FROM memories")
            if (seq, row[0]) in asked
        }
        one_row = rows_by_seq(db, asked)
        assert one_row.keys() == by_row.keys()
        assert all(record(one_row[seq]) == record(by_row[seq]) for seq in by_row)
    finally:
        index.close()
        path.unlink(missing_ok=True)


class _CountingCursor:
    def __init__(self, cursor: sqlite3.Cursor, rows: list[int]) -> None:
        self._cursor, self._rows = cursor, rows

    def _counted(self, rows: list[Any]) -> list[Any]:
        self._rows.append(len(rows))
        return rows

    def fetchall(self) -> list[Any]:
        return self._counted(self._cursor.fetchall())

    def fetchone(self) -> Any:
        row = self._cursor.fetchone()
        return self._counted([row] if row is not None else [])[0] if row is not None else None

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


class _CountingConnection:
    """The search thread's connection, counting the rows its statements yield: each is
    a step of SQLite after which the thread takes the GIL back."""

    def __init__(self, db: sqlite3.Connection, rows: list[int]) -> None:
        self._db, self._rows = db, rows

    def execute(self, sql: str, params: Any = ()) -> _CountingCursor:
        return _CountingCursor(self._db.execute(sql, params), self._rows)


def test_a_search_reads_a_few_rows_not_one_per_ranked_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = Index(tmp_path / "memory.sqlite3")
    rows: list[int] = []
    current = WatchedConnection.current
    monkeypatch.setattr(
        WatchedConnection, "current", lambda self: _CountingConnection(current(self), rows)
    )
    try:
        index.add(*(memory(f"port {n} of the heron", session=f"s{n}") for n in range(60)))
        hits = index(
            lambda found: found.search(
                "alice", "shop", "which port?", limit=10, exclude_session="s0"
            )
        )
    finally:
        index.close()
    assert len(hits) == 10  # 40 ranked (RANKED_FIRST), 10 returned
    assert sum(rows) <= 4, rows  # term counts, ranking, records: a row each
