"""The memory index's SQL: the columns of a record, the statements of a search
(sqlite_index.py says how a search is scoped and bounded) and of a batch's adding."""

from __future__ import annotations

import dataclasses
import sqlite3
from typing import Any

import orjson

from memory_proxy.records.memory import MemoryRecord
from memory_proxy.stores.packed_text import unpack

RECORD_COLUMNS = "id, user_id, project, session_id, client, model, created_at, text, private"
SCORE_COLUMN = 9  # after the record's columns
RECORD_COLUMNS_OF_M = ", ".join("m." + column for column in RECORD_COLUMNS.split(", "))
# The text column counts, the scope column doesn't; negated so that higher is better.
SCORE = "-bm25(memories_fts, 1.0, 0.0)"
# ?1 the FTS5 query, ?2 the user (NULL: every user), ?3 the project, ?4 the session left out,
# ?6 whether private models' memories may be found.
# The best rows found first, their texts read after: a sort carrying every match's text
# cost more than the search.
SEARCH = f"""
SELECT {RECORD_COLUMNS_OF_M}, best.score
FROM (SELECT m.seq AS seq, {SCORE} AS score
      FROM memories_fts JOIN memories m ON m.seq = memories_fts.rowid
      WHERE memories_fts MATCH ?1 AND (?2 IS NULL OR m.user_id = ?2)
            AND (?3 IS NULL OR m.project = ?3) AND (?4 IS NULL OR m.session_id IS NOT ?4)
            AND (?6 OR m.private = 0)
      ORDER BY score DESC LIMIT ?5) AS best
JOIN memories m ON m.seq = best.seq
ORDER BY best.score DESC
"""
# Ranked inside FTS5 first (?7 of the best), each marked whether the search may return
# it: no join per match. When too few are left, SEARCH ranks only those. One row (a JSON
# array of [seq, score printed to round-trip exactly, mark, id]): see `ranked`.
RANKED_FIRST_IN_ONE_ROW = f"""
SELECT json_group_array(json_array(
    best.rowid, printf('%!.17g', best.score),
    (?2 IS NULL OR m.user_id = ?2) AND (?3 IS NULL OR m.project = ?3)
    AND (?4 IS NULL OR m.session_id IS NOT ?4) AND (?6 OR m.private = 0),
    m.id))
FROM (SELECT rowid, {SCORE} AS score FROM memories_fts WHERE memories_fts MATCH ?1
      ORDER BY score DESC LIMIT ?7) AS best
JOIN memories m ON m.seq = best.rowid
"""
# The records of the seqs given (a JSON array), as one row: a JSON array of each one's
# seq, its RECORD_COLUMNS (created_at printed to round-trip, the text in hex after
# whether it is packed) in no order.
RECORDS_IN_ONE_ROW = """
SELECT json_group_array(json_array(
    seq, id, user_id, project, session_id, client, model, printf('%!.17g', created_at),
    typeof(text) = 'blob', hex(text), private))
FROM memories WHERE seq IN (SELECT value FROM json_each(?1))
"""
RANKED_FIRST = 4  # times the limit, ranked before the rows are read
# Every user's, no session left out: ranked inside FTS5, only the best rows read.
SEARCH_EVERY_USER = f"""
SELECT {RECORD_COLUMNS_OF_M}, best.score
FROM (SELECT rowid, {SCORE} AS score FROM memories_fts WHERE memories_fts MATCH ?1
      ORDER BY score DESC LIMIT ?2) AS best
JOIN memories m ON m.seq = best.rowid
WHERE ?3 IS NULL OR m.project = ?3
ORDER BY best.score DESC
"""
# Those of a JSON array of ids stored already.
STORED_OF = "SELECT id FROM memories WHERE id IN (SELECT value FROM json_each(?1))"
# Each distinct user id, one index seek apiece rather than a scan of every row.
USERS = """
WITH RECURSIVE users (id) AS (
    SELECT MIN(user_id) FROM memories
    UNION ALL
    SELECT (SELECT MIN(user_id) FROM memories WHERE user_id > users.id)
    FROM users WHERE users.id IS NOT NULL
)
SELECT id FROM users WHERE id IS NOT NULL
"""


def ranked(db: sqlite3.Connection, params: tuple[Any, ...]) -> list[tuple[int, float, bool, str]]:
    """RANKED_FIRST_IN_ONE_ROW's (seq, score, whether the search may return it, id), best
    first. One row, so that the search thread takes the GIL back once, not once per row:
    beside a busy event loop each time may wait milliseconds for it."""
    (found,) = db.execute(RANKED_FIRST_IN_ONE_ROW, params).fetchone()
    best = [(seq, float(score), bool(mark), id_) for seq, score, mark, id_ in orjson.loads(found)]
    best.sort(key=lambda one: -one[1])  # stable: FTS5's order among equal scores
    return best


def rows_by_seq(
    db: sqlite3.Connection, ranked: list[tuple[int, str]]
) -> dict[int, tuple[Any, ...]]:
    """The rows of RECORD_COLUMNS of the `ranked` memories (seq, id) still there, read in
    one row of RECORDS_IN_ONE_ROW, as `ranked` reads. A seq that holds another memory
    since it was ranked (its row deleted, its seq taken again) is left out: the ranking's
    statement read another snapshot of the file."""
    ids = dict(ranked)
    (found,) = db.execute(RECORDS_IN_ONE_ROW, (orjson.dumps(list(ids)).decode(),)).fetchone()
    rows = {}
    for seq, *columns, created_at, packed, text, private in orjson.loads(found):
        if columns[0] != ids[seq]:
            continue
        stored = bytes.fromhex(text)
        rows[seq] = (*columns, float(created_at), stored if packed else stored.decode(), private)
    return rows


def best_rows(
    db: sqlite3.Connection, params: tuple[Any, ...], limit: int
) -> list[tuple[Any, ...]] | None:
    """The rows (RECORD_COLUMNS, then the score) of the `limit` best memories the search
    may return, found among the `limit` * RANKED_FIRST best matches (`params`: SEARCH's);
    None when fewer may be returned and there may be more: SEARCH ranks only those."""
    found = ranked(db, (*params, limit * RANKED_FIRST))
    best = [(seq, score, id_) for seq, score, mark, id_ in found if mark][:limit]
    if len(best) < limit and len(found) == limit * RANKED_FIRST:
        return None
    kept = rows_by_seq(db, [(seq, id_) for seq, _, id_ in best])
    return [(*kept[seq], score) for seq, score, _ in best if seq in kept]


def record(row: tuple[Any, ...]) -> MemoryRecord:
    """A row of RECORD_COLUMNS: the text packed, the private flag SQLite's 0 or 1."""
    id_, user_id, project, session_id, client, model, created_at, text, private = row
    found = MemoryRecord(id_, user_id, project, session_id, client, model, created_at, "")
    return dataclasses.replace(found, text=unpack(text), private=bool(private))
