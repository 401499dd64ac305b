"""Long-term memories in the SQLite file, searched with FTS5's BM25.

Layout. `memories` holds the records; `memories_fts` is an *external content* FTS5 index
over it: the text is stored once (in `memories`), triggers keep the index in step, and
`INSERT INTO memories_fts(memories_fts) VALUES('rebuild')` can always regenerate it. (A
contentless index would also store the text once, but before SQLite 3.43 its rows can't be
deleted.) The index is keyed by `seq`, an INTEGER PRIMARY KEY, because an implicit rowid may
be renumbered by VACUUM, which would silently point the index at the wrong memories.

Search is per (user, project): each row's `scope` column holds two opaque tokens, one for
its user and one for its user+project, and a search ANDs the right one with the query's
words. FTS5 then scores only that user's (or project's) rows instead of every match in the
file. At 100,000 memories over 200 projects (synthetic text, raw SQL) a search took ~1 ms
of CPU this way, ~5 ms filtering after a join, and ~16 ms with UNINDEXED user/project
columns (an external-content table reads those from `memories` row by row);
scripts/bench_recall.py measures the whole call. What remains is BM25's document
frequencies: FTS5 counts each query word's rows over the whole file, so words found in
most memories cost the most (and weigh the least).

The scope column weighs nothing in the score, and the exact user_id/project comparison
stays in the SQL, so even a token collision could not leak a memory.

Every user's memories (the memories API and CLI for a trusted caller; recall always names
a user) need no token of their own, so files written before need no migration (a token
held by every row would only add its whole doclist to each search). Without a project the
search has no scope clause; with one it ORs that project's token of each user in the file
(found by a skip-scan of the user index), up to `max_scoped_users`. Where the match alone
selects the rows, FTS5 ranks alone and only the best rows are read from `memories`. CPU per
search of 100,000 memories (API page of 50, through the thread): 20 users x 10 projects:
one user 5.9 ms, every user 22 ms, every user's one project 7.7 ms; one user holding all
100,000: that user 49 ms, every user 25 ms; 1,000 users: every user's one project 30 ms
(no tokens; 80 ORed tokens cost 24 ms, 200 cost 77). Listing every user's newest first
uses an index on `created_at` (0.2 ms; built in about 55 ms when a file from before is
first opened; 14 bytes a memory).

A private model's memories are marked (`private`, added to files from before by
`add_private_flag_to_memories` when they are opened: every memory there was a hosted
model's). A search for any other request leaves them out in its SQL, before the limit, so
they never take a hosted request's place or reach it.

Searches have their own connection and thread (search_thread.py: bounded by the recall
budget, dropped when nobody waits); writes and everything else go through the file's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sqlite3
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from memory_proxy.config.recall import RecallSettings
from memory_proxy.records.memory import MemoryRecord, Privacy, ProjectInfo, Recalled
from memory_proxy.stores.recall_query import fts5_phrase, fts5_words, query_terms
from memory_proxy.stores.search_thread import SearchThread
from memory_proxy.stores.sqlite import SQLiteFile

_SCHEMA = """
CREATE TABLE IF NOT EXISTS memories (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    project TEXT NOT NULL,
    session_id TEXT,
    client TEXT NOT NULL,
    model TEXT,
    created_at REAL NOT NULL,
    text TEXT NOT NULL,
    scope TEXT NOT NULL,
    private INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS memories_by_user ON memories (user_id, created_at);
CREATE INDEX IF NOT EXISTS memories_by_project ON memories (user_id, project, created_at);
CREATE INDEX IF NOT EXISTS memories_by_time ON memories (created_at);
CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts USING fts5 (
    text, scope, content='memories', content_rowid='seq', tokenize='porter unicode61'
);
CREATE TRIGGER IF NOT EXISTS memories_indexed AFTER INSERT ON memories BEGIN
    INSERT INTO memories_fts (rowid, text, scope) VALUES (new.seq, new.text, new.scope);
END;
CREATE TRIGGER IF NOT EXISTS memories_unindexed AFTER DELETE ON memories BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, text, scope)
    VALUES ('delete', old.seq, old.text, old.scope);
END;
"""
DEFAULT_SEARCH_BUDGET = RecallSettings.timeout_ms / 1000
_RECORD_COLUMNS = "id, user_id, project, session_id, client, model, created_at, text, private"
_SCORE_COLUMN = 9  # after the record's columns
_RECORD_COLUMNS_OF_M = ", ".join("m." + column for column in _RECORD_COLUMNS.split(", "))
# The text column counts, the scope column doesn't; negated so that higher is better.
_SCORE = "-bm25(memories_fts, 1.0, 0.0)"
# ?1 the FTS5 query, ?2 the user (NULL: every user), ?3 the project, ?4 the session left out,
# ?6 whether private models' memories may be found.
_SEARCH = f"""
SELECT {_RECORD_COLUMNS_OF_M}, {_SCORE}
FROM memories_fts JOIN memories m ON m.seq = memories_fts.rowid
WHERE memories_fts MATCH ?1 AND (?2 IS NULL OR m.user_id = ?2) AND (?3 IS NULL OR m.project = ?3)
      AND (?4 IS NULL OR m.session_id IS NOT ?4) AND (?6 OR m.private = 0)
ORDER BY {_SCORE_COLUMN + 1} DESC LIMIT ?5
"""
# Every user's, no session left out: ranked inside FTS5, only the best rows read.
_SEARCH_EVERY_USER = f"""
SELECT {_RECORD_COLUMNS_OF_M}, best.score
FROM (SELECT rowid, {_SCORE} AS score FROM memories_fts WHERE memories_fts MATCH ?1
      ORDER BY score DESC LIMIT ?2) AS best
JOIN memories m ON m.seq = best.rowid
WHERE ?3 IS NULL OR m.project = ?3
ORDER BY best.score DESC
"""
# Each distinct user id, one index seek apiece rather than a scan of every row.
_USERS = """
WITH RECURSIVE users (id) AS (
    SELECT MIN(user_id) FROM memories
    UNION ALL
    SELECT (SELECT MIN(user_id) FROM memories WHERE user_id > users.id)
    FROM users WHERE users.id IS NOT NULL
)
SELECT id FROM users WHERE id IS NOT NULL
"""


def _scope_token(*parts: str) -> str:
    """Digits only, so that the porter stemmer leaves it alone."""
    digest = hashlib.blake2b("\0".join(parts).encode(), digest_size=8).digest()
    return str(int.from_bytes(digest, "big"))


def _user_token(user_id: str) -> str:
    return _scope_token("user", user_id)


def _project_token(user_id: str, project: str) -> str:
    return _scope_token("project", user_id, project)


def _record(row: tuple[Any, ...]) -> MemoryRecord:
    """A row of _RECORD_COLUMNS: the private flag last, SQLite's 0 or 1."""
    record = MemoryRecord(*row[:-1])
    return dataclasses.replace(record, private=True) if row[-1] else record


def add_private_flag_to_memories(db: sqlite3.Connection) -> None:
    """The migration of files written before private models: a `private` column, 0 (a
    hosted model's) for every memory there. A constant default: SQLite adds the column
    without rewriting a row. Two processes opening one old file may both try; the second
    finds the column there."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(memories)")}
    if "private" in columns:
        return
    try:
        db.execute("ALTER TABLE memories ADD COLUMN private INTEGER NOT NULL DEFAULT 0")
    except sqlite3.OperationalError as exc:
        if "duplicate column" not in str(exc):
            raise


class SQLiteMemoryIndex:
    """The MemoryIndex in a SQLite file (or IN_MEMORY), on its own connections and threads;
    `search_budget`: the seconds a search may take, waiting included (recall.timeout_ms)."""

    # A project of every user is searched with each user's token up to this many users;
    # beyond, with none (the ORed tokens would cost more than scoring every match).
    max_scoped_users = 64

    def __init__(self, path: Path, search_budget: float = DEFAULT_SEARCH_BUDGET) -> None:
        self._file = SQLiteFile(path, _SCHEMA, upgrade=add_private_flag_to_memories)
        self._searches = SearchThread(self._file.reader(), search_budget)

    @property
    def _db(self) -> sqlite3.Connection:
        return self._file.db  # the file's current connection: it may be opened anew

    async def add(self, records: list[MemoryRecord]) -> None:
        if not records:
            return
        rows = [
            (
                r.id,
                r.user_id,
                r.project,
                r.session_id,
                r.client,
                r.model,
                r.created_at,
                r.text,
                int(r.private),
                f"{_user_token(r.user_id)} {_project_token(r.user_id, r.project)}",
            )
            for r in records
        ]

        def work() -> None:
            with self._file.transaction():
                self._db.executemany(
                    f"INSERT OR IGNORE INTO memories ({_RECORD_COLUMNS}, scope) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )

        await self._file.run(work)

    async def search(
        self,
        user_id: str | None,
        project: str | None,
        query: str,
        *,
        limit: int,
        exclude_session: str | None = None,
        min_share: float = 0.0,
        privacy: Privacy = "hosted",
    ) -> list[Recalled]:
        terms = query_terms(query)
        private_too = privacy == "private"
        if not terms or limit <= 0:
            return []
        words = f"text : ({fts5_words(terms, min_share)})"

        def work(db: sqlite3.Connection) -> list[Recalled]:
            scope = self._scope(db, user_id, project)
            match = words if scope is None else f"scope : ({scope}) AND {words}"
            alone = user_id is None and exclude_session is None and (project is None or scope)
            if alone and private_too:
                # The match alone selects the rows: ranked in FTS5, only the best read.
                rows = db.execute(_SEARCH_EVERY_USER, (match, limit, project)).fetchall()
            else:
                params = (match, user_id, project, exclude_session, limit, private_too)
                rows = db.execute(_SEARCH, params).fetchall()
            return [Recalled(_record(row[:_SCORE_COLUMN]), row[_SCORE_COLUMN]) for row in rows]

        return await self._searches.run(work)

    def _scope(
        self, db: sqlite3.Connection, user_id: str | None, project: str | None
    ) -> str | None:
        """The scope tokens a search ANDs with its words (an FTS5 expression), or None:
        every row; on the search thread."""
        if user_id is not None:
            token = _user_token(user_id) if project is None else _project_token(user_id, project)
            return fts5_phrase(token)
        if project is None:
            return None
        limit = self.max_scoped_users + 1
        users = [user for (user,) in db.execute(_USERS + " LIMIT ?", (limit,))]
        if not users or len(users) == limit:
            return None
        return " OR ".join(fts5_phrase(_project_token(user, project)) for user in users)

    async def list_memories(
        self, user_id: str | None, project: str | None, limit: int, offset: int
    ) -> list[MemoryRecord]:
        """Newest first."""
        where, params = self._where(user_id, project)

        def work() -> list[MemoryRecord]:
            rows = self._db.execute(
                f"SELECT {_RECORD_COLUMNS} FROM memories WHERE {where} "
                "ORDER BY created_at DESC, seq DESC LIMIT ? OFFSET ?",
                (*params, limit, offset),
            ).fetchall()
            return [_record(row) for row in rows]

        return await self._file.run(work)

    async def get(self, user_id: str | None, memory_id: str) -> MemoryRecord | None:
        def work() -> MemoryRecord | None:
            row = self._db.execute(
                f"SELECT {_RECORD_COLUMNS} FROM memories WHERE id = ?1 "
                "AND (?2 IS NULL OR user_id = ?2)",
                (memory_id, user_id),
            ).fetchone()
            return _record(row) if row else None

        return await self._file.run(work)

    async def delete(self, user_id: str | None, memory_id: str) -> bool:
        def work() -> bool:
            cursor = self._db.execute(
                "DELETE FROM memories WHERE id = ?1 AND (?2 IS NULL OR user_id = ?2)",
                (memory_id, user_id),
            )
            return cursor.rowcount > 0

        return await self._file.run(work)

    async def forget_project(self, user_id: str | None, project: str) -> int:
        where, params = self._where(user_id, project)

        def work() -> int:
            return self._db.execute(f"DELETE FROM memories WHERE {where}", params).rowcount

        return await self._file.run(work)

    async def forget_user(self, user_id: str) -> int:
        def work() -> int:
            return self._db.execute("DELETE FROM memories WHERE user_id = ?", (user_id,)).rowcount

        return await self._file.run(work)

    async def projects(self, user_id: str | None) -> list[ProjectInfo]:
        """Most recently used first."""
        where, params = self._where(user_id, None)

        def work() -> list[ProjectInfo]:
            rows = self._db.execute(
                "SELECT user_id, project, COUNT(*), MAX(created_at) FROM memories "
                f"WHERE {where} GROUP BY user_id, project ORDER BY 4 DESC",
                params,
            ).fetchall()
            return [ProjectInfo(*row) for row in rows]

        return await self._file.run(work)

    async def export(
        self, user_id: str | None, project: str | None, *, batch: int = 500
    ) -> AsyncGenerator[list[MemoryRecord], None]:
        """Oldest first, in batches, from one statement: it reads one snapshot of the
        file (WAL), so memories a running proxy adds meanwhile are neither half-read nor
        read twice, as paging with offsets would."""
        cursor = await self._file.run(
            lambda: self._db.execute(
                f"SELECT {_RECORD_COLUMNS} FROM memories "
                "WHERE (?1 IS NULL OR user_id = ?1) AND (?2 IS NULL OR project = ?2) ORDER BY seq",
                (user_id, project),
            )
        )
        try:
            while rows := await self._file.run(lambda: cursor.fetchmany(batch)):
                yield [_record(row) for row in rows]
        finally:
            await self._file.run(cursor.close)

    async def aclose(self) -> None:
        self._searches.stop()
        await self._file.aclose()

    @staticmethod
    def _where(user_id: str | None, project: str | None) -> tuple[str, tuple[str, ...]]:
        """Separate statements per case, so that each uses its index (every user's:
        `memories_by_time` for the order, or none)."""
        if user_id is None:
            return ("1", ()) if project is None else ("project = ?", (project,))
        if project is None:
            return "user_id = ?", (user_id,)
        return "user_id = ? AND project = ?", (user_id, project)
