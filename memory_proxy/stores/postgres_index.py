"""Long-term memories in PostgreSQL, searched with its own full-text search: shared by
every proxy on the database, so that a fact told through one is recalled through another.

Layout (postgres_index_schema.py): `memories` holds the records, each text packed, and
`words`, the text's terms as SQLite's porter tokenizer makes them, as a tsvector made in
Python (postgres_term_counts.py), with a GIN index; `memory_terms` counts the memories
holding each term, kept by the same statements that add and forget memories. Only what
ships with PostgreSQL 15: no extension.

A search is what the SQLite index does, on PostgreSQL, in one statement (one round
trip: postgres_search.py): the counts of the question's terms read, the rarer terms
matched (search_terms.py), the user, project, session left out and private flag in the
WHERE beside each term's tsquery (the GIN index finds the rows), ranked by SQLite's BM25
before the LIMIT; each term then weighed from the counts returned (relevance.py). The
hits that cover `min_share` of the question's weight are returned with their share, as
SQLite's are; so recall keeps the same memories from either.

Searches have a pool of their own, bounded by the recall budget, which takes or refuses
a search when it is asked for (postgres_search_pool.py).

Forgetting: the rows are deleted and the table vacuumed (its index entries removed, its
space reusable). PostgreSQL has no secure delete: a deleted row's bytes stay in its page
until new rows overwrite them, and in the write-ahead log until its segments are
recycled; no query can read them. The database's owner can rewrite the table into new
files with VACUUM FULL (README "The PostgreSQL database").
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Collection
from typing import Any

from psycopg import AsyncConnection

from memory_proxy.records.memory import (
    MemoryRecord,
    Privacy,
    ProjectInfo,
    Recalled,
    SessionSummary,
)
from memory_proxy.stores import postgres_search
from memory_proxy.stores import postgres_term_counts as term_counts
from memory_proxy.stores.base import FileUse
from memory_proxy.stores.packed_text import pack, unpack
from memory_proxy.stores.postgres_database import PostgresDatabase
from memory_proxy.stores.postgres_index_schema import MIGRATIONS
from memory_proxy.stores.postgres_search_pool import SearchPool
from memory_proxy.stores.recall_query import query_terms
from memory_proxy.stores.relevance import no_hits, relevant, stems
from memory_proxy.stores.search_admission import DEFAULT_BUDGET

ANALYSE_EVERY = 5000  # memories added by this process between two ANALYZEs
WAIT_SECONDS = 30.0  # the memories API and CLI, and the writer, off the request path
COLUMNS = [
    "id",
    "user_id",
    "project",
    "session_id",
    "client",
    "model",
    "created_at",
    "text",
    "private",
]
RECORD_COLUMNS = ", ".join(COLUMNS)
# The memories added (a batch: arrays, one per column, inserted in their order) and their
# terms counted, in one statement.
_ADD = f"""
WITH changed AS (
    INSERT INTO memories ({RECORD_COLUMNS}, words, length)
    SELECT {RECORD_COLUMNS}, words, length FROM unnest(%s::text[], %s::text[], %s::text[],
        %s::text[], %s::text[], %s::text[], %s::float8[], %s::bytea[], %s::boolean[],
        %s::tsvector[], %s::integer[]) WITH ORDINALITY AS new ({RECORD_COLUMNS}, words, length, n)
    ORDER BY n
    ON CONFLICT (id) DO NOTHING
    RETURNING words, length
)""" + term_counts.counting(1)
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
    id_, user_id, project, session, client, model, created_at, text, private = row
    text = unpack(bytes(text))
    return MemoryRecord(id_, user_id, project, session, client, model, created_at, text, private)


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

    def __init__(self, url: str, search_budget: float = DEFAULT_BUDGET) -> None:
        self._db = PostgresDatabase(
            url, "memories", MIGRATIONS, max_size=2, statement_timeout_ms=60_000
        )
        self._searches = SearchPool(url, search_budget)
        # Statistics after an import, before autovacuum's minute: without them one
        # project's search scanned the project (p50 15-30 ms instead of 0.5-2.5).
        self.analyse_every = ANALYSE_EVERY
        self._unanalysed = 0

    async def add(self, records: list[MemoryRecord]) -> None:
        if not records:
            return
        columns = await asyncio.to_thread(_columns, records)  # stemming: off the event loop
        async with self._db.connection(WAIT_SECONDS) as db:
            row = await (await db.execute(_ADD, columns)).fetchone()
            self._unanalysed += int(row[0]) if row else 0
            if self._unanalysed >= self.analyse_every:
                self._unanalysed = 0
                await db.execute("ANALYZE memories")

    def search(
        self,
        user_id: str | None,
        project: str | None,
        query: str,
        *,
        limit: int,
        exclude_session: str | None = None,
        min_share: float = 0.0,
        fill_share: float | None = None,
        privacy: Privacy = "hosted",
    ) -> Awaitable[list[Recalled]]:
        """Taken, or refused (SearchBusy), when called (postgres_search_pool.py)."""
        terms = query_terms(query)
        if not terms or limit <= 0 or _unstorable(user_id, project):
            return no_hits()

        async def work(db: AsyncConnection) -> list[Recalled]:
            # Made here: a search refused at once stems nothing and makes no statement.
            where, params = _scope(user_id, project)
            if exclude_session is not None and not _unstorable(exclude_session):
                where += " AND session_id IS DISTINCT FROM %s"
                params += (exclude_session,)
            if privacy != "private":
                where += " AND NOT private"
            question = stems(terms)
            statement = postgres_search.statement(COLUMNS, where)
            arguments = postgres_search.arguments(question, min_share, params, limit)
            rows = await (await db.execute(statement, arguments)).fetchall()
            if not rows:
                return []  # nothing found, or no memory could cover min_share
            weights = postgres_search.weights(question, rows[0][-2], rows[0][-1])
            scored = [(record_of(row[:-4]), float(row[-4]), row[-3]) for row in rows]
            return relevant(scored, weights, min_share, fill_share)

        return self._searches.run(work)

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
        """The memories `where` selects deleted and their terms counted off, in one
        transaction."""
        forget = f"WITH changed AS (DELETE FROM memories WHERE {where} RETURNING words, length)"
        async with self._db.connection(WAIT_SECONDS) as db, db.transaction():
            row = await (await db.execute(forget + term_counts.counting(-1), params)).fetchone()
            forgotten, unheld = (int(row[0]), row[1]) if row else (0, [])
            if unheld:
                await db.execute(term_counts.DROP_UNHELD, (unheld,))
        if forgotten and erase:
            await self.erase()
        return forgotten

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


def _columns(records: list[MemoryRecord]) -> tuple[list[Any], ...]:
    """The records as _ADD takes them: one list per column, their terms made."""
    indexed = [term_counts.tsvector_of(r.text) for r in records]
    return (
        [r.id for r in records],
        [r.user_id for r in records],
        [r.project for r in records],
        [r.session_id for r in records],
        [r.client for r in records],
        [r.model for r in records],
        [float(r.created_at) for r in records],
        [pack(r.text) for r in records],
        [r.private for r in records],
        [words for words, _ in indexed],
        [length for _, length in indexed],
    )
