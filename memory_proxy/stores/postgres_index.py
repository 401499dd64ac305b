"""Long-term memories in PostgreSQL, searched with its own full-text search: shared by
every proxy on the database, so that a fact told through one is recalled through another.

Layout (MIGRATIONS): `memories` holds the records, each text packed as in the SQLite file
(packed_text.py: PostgreSQL's text cannot hold a NUL, and a packed text takes half the
space), and `words`, the text's tsvector in the `english` configuration (Snowball's
English stemmer, close to SQLite's porter: "deploying" finds "deployed"), computed from
the text in the INSERT, with a GIN index. Only what ships with PostgreSQL 15: no
extension.

A search is one statement: the question's topic words (recall_query.py, as the SQLite
index asks: "at least k of these words" for short questions) as a `to_tsquery`, the
user, project, session left out and private flag in the WHERE (the GIN index and the
user/project index combined by the planner), ranked by `ts_rank` divided by the text's
length in words before the LIMIT. Candidates and their score, as the SQLite index returns
them; recall judges them (memory/recall.py). PostgreSQL has no IDF (BM25 weighs rare
words more): on the recall benchmark's quality set (scripts/bench_recall.py, 200 facts
in 3,200 memories; recall@5 in the project / in any project of the user), SQLite's BM25
gets own words 1.0 / 1.0 and paraphrases 0.355 / 0.29; here `ts_rank` by length 1.0 /
0.995 and 0.295 / 0.24, `ts_rank_cd` by 1 + log(length) 0.99 / 0.965 and 0.305 / 0.19,
`ts_rank_cd` by length 0.99 / 0.965 and 0.325 / 0.19, either without length 0.27-0.275
on paraphrases.

Searches have a pool of their own, bounded by the recall budget (search_admission.py);
each connection's statement timeout is the budget, so the server never works for a
search nobody waits for, and a search whose waiter leaves is cancelled on the server at
once while the waiter goes on without waiting for it.

Forgetting: the rows are deleted and the table vacuumed (its index entries removed, its
space reusable). PostgreSQL has no secure delete: a deleted row's bytes stay in its page
until new rows overwrite them, and in the write-ahead log until its segments are
recycled; no query can read them. The database's owner can rewrite the table into new
files with VACUUM FULL (README "The PostgreSQL database").
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncGenerator, Collection
from typing import Any

from psycopg import AsyncConnection

from memory_proxy.config.recall import RecallSettings
from memory_proxy.records.memory import (
    MemoryRecord,
    Privacy,
    ProjectInfo,
    Recalled,
    SessionSummary,
)
from memory_proxy.stores.base import FileUse
from memory_proxy.stores.packed_text import pack, unpack
from memory_proxy.stores.postgres_database import PostgresDatabase, PostgresMigration, run_script
from memory_proxy.stores.recall_query import query_terms, tsquery_words
from memory_proxy.stores.search_admission import SearchAdmission

DEFAULT_SEARCH_BUDGET = RecallSettings.timeout_ms / 1000
SEARCH_CONNECTIONS = 4
ANALYSE_EVERY = 5000  # memories added by this process between two ANALYZEs
WAIT_SECONDS = 30.0  # the memories API and CLI, and the writer, off the request path
_MEMORIES = """
CREATE TABLE memories (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id text NOT NULL UNIQUE,
    user_id text NOT NULL,
    project text NOT NULL,
    session_id text,
    client text NOT NULL,
    model text,
    created_at double precision NOT NULL,
    text bytea NOT NULL,
    private boolean NOT NULL DEFAULT false,
    words tsvector NOT NULL
);
CREATE INDEX memories_words ON memories USING gin (words);
CREATE INDEX memories_by_user ON memories (user_id, created_at);
CREATE INDEX memories_by_project ON memories (user_id, project, created_at);
CREATE INDEX memories_by_time ON memories (created_at);
"""
MIGRATIONS: tuple[PostgresMigration, ...] = (
    PostgresMigration(
        1, "memories and their full-text index", lambda db: run_script(db, _MEMORIES)
    ),
)
RECORD_COLUMNS = "id, user_id, project, session_id, client, model, created_at, text, private"
_INSERT = f"""
INSERT INTO memories ({RECORD_COLUMNS}, words)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, to_tsvector('english', %s))
ON CONFLICT (id) DO NOTHING
"""
_SCORE = "ts_rank(words, query, 2)"
# The user's, project's and privacy's memories of each session: the latest sessions (as
# many as asked), then each one's first text and latest client and text.
_RECENT_SESSIONS = """
WITH mine AS MATERIALIZED (
    SELECT session_id, client, text, created_at, seq FROM memories
    WHERE user_id = %s AND project = %s AND session_id IS NOT NULL AND (%s OR NOT private)
), latest AS (
    SELECT session_id, count(*) AS n, min(created_at) AS started,
        max(created_at) AS last, max(seq) AS last_seq
    FROM mine GROUP BY session_id ORDER BY last DESC, last_seq DESC LIMIT %s
)
SELECT l.session_id, l.n, l.started, l.last, newest.client,
    (SELECT text FROM mine m WHERE m.session_id = l.session_id
        ORDER BY created_at, seq LIMIT 1),
    newest.text
FROM latest l, LATERAL (
    SELECT client, text FROM mine m WHERE m.session_id = l.session_id
    ORDER BY created_at DESC, seq DESC LIMIT 1
) AS newest
ORDER BY l.last DESC, l.last_seq DESC
"""


def record_of(row: tuple[Any, ...]) -> MemoryRecord:
    id_, user_id, project, session_id, client, model, created_at, text, private = row
    record = MemoryRecord(id_, user_id, project, session_id, client, model, created_at, "")
    return dataclasses.replace(record, text=unpack(bytes(text)), private=private)


def _unstorable(*values: str | None) -> bool:
    """Whether one of `values` holds a NUL, which no PostgreSQL text does: no row is
    theirs (and the statement would be refused)."""
    return any(value is not None and "\0" in value for value in values)


def _scope(user_id: str | None, project: str | None) -> tuple[str, tuple[str, ...]]:
    """A WHERE clause per case, so that each statement uses its index."""
    if user_id is None:
        return ("true", ()) if project is None else ("project = %s", (project,))
    if project is None:
        return "user_id = %s", (user_id,)
    return "user_id = %s AND project = %s", (user_id, project)


class PostgresMemoryIndex:
    """The MemoryIndex in PostgreSQL; `search_budget`: the seconds a search may take,
    waiting included (recall.timeout_ms)."""

    def __init__(self, url: str, search_budget: float = DEFAULT_SEARCH_BUDGET) -> None:
        self._db = PostgresDatabase(
            url, "memories", MIGRATIONS, max_size=2, statement_timeout_ms=60_000
        )
        self._search_budget = search_budget
        self._searches = PostgresDatabase(
            url,
            "memories",
            None,  # migrated just above
            max_size=SEARCH_CONNECTIONS,
            statement_timeout_ms=max(1, round(search_budget * 1000)),
        )
        self._admission = SearchAdmission(search_budget, SEARCH_CONNECTIONS)
        # Statistics after an import, before autovacuum's minute: without them one
        # project's search scanned the project (p50 15-30 ms instead of 0.5-2.5).
        self.analyse_every = ANALYSE_EVERY
        self._unanalysed = 0

    async def add(self, records: list[MemoryRecord]) -> None:
        if not records:
            return
        rows = [
            (
                *_fields(r),
                pack(r.text),
                r.private,
                r.text.replace("\0", " "),  # what the index reads: no NUL in a text
            )
            for r in records
        ]
        async with self._db.connection(WAIT_SECONDS) as db:
            async with db.transaction(), db.cursor() as cursor:
                await cursor.executemany(_INSERT, rows)
            self._unanalysed += len(rows)
            if self._unanalysed >= self.analyse_every:
                self._unanalysed = 0
                await db.execute("ANALYZE memories")

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
        if not terms or limit <= 0 or _unstorable(user_id, project):
            return []
        where, params = _scope(user_id, project)
        if exclude_session is not None and not _unstorable(exclude_session):
            where += " AND session_id IS DISTINCT FROM %s"
            params += (exclude_session,)
        if privacy != "private":
            where += " AND NOT private"
        statement = (
            f"SELECT {RECORD_COLUMNS}, {_SCORE} AS score "
            "FROM memories, to_tsquery('english', %s) AS query "
            f"WHERE words @@ query AND {where} ORDER BY score DESC, seq LIMIT %s"
        )
        arguments = (tsquery_words(terms, min_share), *params, limit)

        async def work(db: AsyncConnection) -> list[Recalled]:
            rows = await (await db.execute(statement, arguments)).fetchall()
            return [Recalled(record_of(row[:-1]), float(row[-1])) for row in rows]

        self._admission.admit()
        started = time.perf_counter()
        task = asyncio.ensure_future(self._searches.read(work, self._search_budget))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.cancel()  # cancelled on the server too, without the waiter waiting
            raise
        finally:
            self._admission.settled()
            if task.done() and not task.cancelled():
                self._admission.took(time.perf_counter() - started)

    async def list_memories(
        self,
        user_id: str | None,
        project: str | None,
        limit: int,
        offset: int,
        *,
        before: float | None = None,
        privacy: Privacy = "private",
    ) -> list[MemoryRecord]:
        """Newest first."""
        where, scope = _scope(user_id, project)
        params: tuple[Any, ...] = scope
        if before is not None:
            where, params = f"{where} AND created_at < %s", (*params, before)
        if privacy != "private":
            where += " AND NOT private"
        return await self._records(
            f"SELECT {RECORD_COLUMNS} FROM memories WHERE {where} "
            "ORDER BY created_at DESC, seq DESC LIMIT %s OFFSET %s",
            (*params, limit, offset),
        )

    async def recent_sessions(
        self, user_id: str, project: str, limit: int, *, privacy: Privacy = "hosted"
    ) -> list[SessionSummary]:
        """One statement: the latest sessions by the (user, project, time) index, each
        one's first and latest memory by a lookup of it."""
        if _unstorable(user_id, project):
            return []

        async def work(db: AsyncConnection) -> list[SessionSummary]:
            cursor = await db.execute(
                _RECENT_SESSIONS, (user_id, project, privacy == "private", limit)
            )
            return [
                SessionSummary(
                    session,
                    project,
                    client,
                    int(n),
                    started,
                    last,
                    unpack(bytes(first)),
                    unpack(bytes(latest)),
                )
                for session, n, started, last, client, first, latest in await cursor.fetchall()
            ]

        return await self._db.read(work, WAIT_SECONDS)

    async def get(self, user_id: str | None, memory_id: str) -> MemoryRecord | None:
        if _unstorable(user_id, memory_id):
            return None
        where, params = _scope(user_id, None)
        found = await self._records(
            f"SELECT {RECORD_COLUMNS} FROM memories WHERE id = %s AND {where}",
            (memory_id, *params),
        )
        return found[0] if found else None

    async def stored(self, memory_ids: Collection[str]) -> set[str]:
        async def work(db: AsyncConnection) -> set[str]:
            cursor = await db.execute(
                "SELECT id FROM memories WHERE id = ANY(%s)", (list(memory_ids),)
            )
            return {row[0] for row in await cursor.fetchall()}

        return await self._db.read(work, WAIT_SECONDS)

    async def delete(self, user_id: str | None, memory_id: str) -> bool:
        if _unstorable(user_id, memory_id):
            return False
        where, params = _scope(user_id, None)
        return await self._forget(f"id = %s AND {where}", (memory_id, *params), erase=True) > 0

    async def forget_project(self, user_id: str | None, project: str) -> int:
        return await self._forget(*_scope(user_id, project), erase=True)

    async def forget_user(self, user_id: str) -> int:
        return await self._forget(*_scope(user_id, None), erase=True)

    async def forget_older_than(self, moment: float, limit: int) -> int:
        """Up to `limit` of the oldest memories made before `moment` (`erase` follows)."""
        oldest = "SELECT seq FROM memories WHERE created_at < %s ORDER BY created_at LIMIT %s"
        return await self._forget(f"seq IN ({oldest})", (moment, limit), erase=False)

    async def forget_oldest(self, limit: int) -> int:
        """The `limit` oldest memories (`erase` follows)."""
        oldest = "SELECT seq FROM memories ORDER BY created_at LIMIT %s"
        return await self._forget(f"seq IN ({oldest})", (limit,), erase=False)

    async def _forget(self, where: str, params: tuple[Any, ...], *, erase: bool) -> int:
        async with self._db.connection(WAIT_SECONDS) as db:
            cursor = await db.execute(f"DELETE FROM memories WHERE {where}", params)
        if cursor.rowcount > 0 and erase:
            await self.erase()
        return cursor.rowcount

    async def erase(self) -> bool:
        """The forgotten rows' index entries removed and their space made reusable
        (VACUUM); their bytes stay in the pages until overwritten (see the module)."""
        async with self._db.connection(WAIT_SECONDS) as db:
            await db.execute("VACUUM memories")
        return True

    async def used_bytes(self) -> int:
        async def work(db: AsyncConnection) -> int:
            cursor = await db.execute("SELECT pg_total_relation_size('memories')")
            row = await cursor.fetchone()
            return int(row[0]) if row else 0

        return await self._db.read(work, WAIT_SECONDS)

    async def use(self) -> FileUse:
        async def work(db: AsyncConnection) -> FileUse:
            cursor = await db.execute(
                "SELECT pg_total_relation_size('memories'), (SELECT count(*) FROM memories)"
            )
            row = await cursor.fetchone()
            return FileUse(int(row[0]), int(row[1])) if row else FileUse(0, 0)

        return await self._db.read(work, WAIT_SECONDS)

    async def projects(self, user_id: str | None) -> list[ProjectInfo]:
        """Most recently used first."""
        where, params = _scope(user_id, None)

        async def work(db: AsyncConnection) -> list[ProjectInfo]:
            cursor = await db.execute(
                "SELECT user_id, project, count(*), max(created_at) FROM memories "
                f"WHERE {where} GROUP BY user_id, project ORDER BY 4 DESC",
                params,
            )
            return [ProjectInfo(u, p, int(n), last) for u, p, n, last in await cursor.fetchall()]

        return await self._db.read(work, WAIT_SECONDS)

    async def export(
        self, user_id: str | None, project: str | None, *, batch: int = 500
    ) -> AsyncGenerator[list[MemoryRecord], None]:
        """Oldest first, in batches, from one snapshot (a server-side cursor in one
        transaction): memories added meanwhile are neither half-read nor read twice."""
        where, params = _scope(user_id, project)
        async with (
            self._db.connection(WAIT_SECONDS) as db,
            db.transaction(),
            db.cursor(name="memory_proxy_export") as cursor,
        ):
            await cursor.execute(
                f"SELECT {RECORD_COLUMNS} FROM memories WHERE {where} ORDER BY seq", params
            )
            while rows := await cursor.fetchmany(batch):
                yield [record_of(row) for row in rows]

    async def _records(self, query: str, params: tuple[Any, ...]) -> list[MemoryRecord]:
        async def work(db: AsyncConnection) -> list[MemoryRecord]:
            return [record_of(row) for row in await (await db.execute(query, params)).fetchall()]

        return await self._db.read(work, WAIT_SECONDS)

    async def aclose(self) -> None:
        await self._searches.aclose()
        await self._db.aclose()


def _fields(record: MemoryRecord) -> tuple[Any, ...]:
    """A record's columns before its text."""
    r = record
    return (r.id, r.user_id, r.project, r.session_id, r.client, r.model, r.created_at)
