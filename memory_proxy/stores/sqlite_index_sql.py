"""The memory index's SQL: the columns of a record, the statements of a search
(sqlite_index.py says how a search is scoped and bounded) and of a batch's adding."""

from __future__ import annotations

import dataclasses
from typing import Any

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
# Ranked inside FTS5 first (?7 of the best), then the rows the search may return marked:
# no join per match. When too few are left, SEARCH ranks only those.
SEARCH_RANKED_FIRST = f"""
SELECT {RECORD_COLUMNS_OF_M}, best.score,
       (?2 IS NULL OR m.user_id = ?2) AND (?3 IS NULL OR m.project = ?3)
       AND (?4 IS NULL OR m.session_id IS NOT ?4) AND (?6 OR m.private = 0)
FROM (SELECT rowid, {SCORE} AS score FROM memories_fts WHERE memories_fts MATCH ?1
      ORDER BY score DESC LIMIT ?7) AS best
JOIN memories m ON m.seq = best.rowid
ORDER BY best.score DESC
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


def record(row: tuple[Any, ...]) -> MemoryRecord:
    """A row of RECORD_COLUMNS: the text packed, the private flag SQLite's 0 or 1."""
    id_, user_id, project, session_id, client, model, created_at, text, private = row
    found = MemoryRecord(id_, user_id, project, session_id, client, model, created_at, "")
    return dataclasses.replace(found, text=unpack(text), private=bool(private))
