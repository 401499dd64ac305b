"""Sessions in PostgreSQL (`memory.store: postgres`): the SQLite store's tables, shared by
every proxy on the database, so that a conversation goes on whichever serves it.

A session's append is one call of a function that the migration creates (the expired
session dropped, the session touched, the messages added, the oldest past `max_messages`
dropped, the count kept), its messages read with one join. Loads and appends are queued
for one thread with its own connection, and those queued together run together: the
histories in one statement, the appends in another (postgres_session_rows.py); the rest
(the API's listing and deletes, the purge) uses a small pool on the event loop.
A message's JSON is packed as in the SQLite file, a short one kept as it is
(packed_text.py). Deleting a session or its expiry deletes its rows; PostgreSQL keeps
the dead tuples until VACUUM reclaims their space (autovacuum, soon after), and never in
a form a query can read: see README "The PostgreSQL database".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from psycopg import AsyncConnection

from memory_proxy.records.messages import Message
from memory_proxy.stores.base import SessionInfo
from memory_proxy.stores.batched_calls import BatchedCalls
from memory_proxy.stores.postgres_database import PostgresDatabase, PostgresMigration, run_script
from memory_proxy.stores.postgres_session_rows import SessionRows
from memory_proxy.stores.session_calls import Append, Load, SessionCall
from memory_proxy.stores.worker_thread import WorkerThread

# The longest a request waits for the store (memory/conversation.py waits as long).
WAIT_SECONDS = 0.5
BACKGROUND_TIMEOUT_MS = 60_000
_SESSIONS = """
CREATE TABLE sessions (
    user_id text NOT NULL,
    session_id text NOT NULL,
    created double precision NOT NULL,
    updated double precision NOT NULL,
    message_count integer NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, session_id)
);
CREATE INDEX sessions_by_update ON sessions (updated);
CREATE TABLE messages (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id text NOT NULL,
    session_id text NOT NULL,
    message bytea NOT NULL,
    FOREIGN KEY (user_id, session_id) REFERENCES sessions ON DELETE CASCADE
);
CREATE INDEX messages_by_session ON messages (user_id, session_id, id);
CREATE FUNCTION memory_proxy_append(
    p_user text, p_session text, p_now double precision, p_oldest_live double precision,
    p_messages bytea[], p_max integer
) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    dropped integer := 0;
BEGIN
    DELETE FROM sessions WHERE user_id = p_user AND session_id = p_session
        AND updated <= p_oldest_live;
    INSERT INTO sessions (user_id, session_id, created, updated)
        VALUES (p_user, p_session, p_now, p_now)
        ON CONFLICT (user_id, session_id) DO UPDATE SET updated = excluded.updated;
    INSERT INTO messages (user_id, session_id, message)
        SELECT p_user, p_session, m FROM unnest(p_messages) WITH ORDINALITY AS t (m, n)
        ORDER BY n;
    IF p_max IS NOT NULL THEN
        DELETE FROM messages WHERE user_id = p_user AND session_id = p_session AND id <= (
            SELECT id FROM messages WHERE user_id = p_user AND session_id = p_session
            ORDER BY id DESC OFFSET p_max LIMIT 1);
        GET DIAGNOSTICS dropped = ROW_COUNT;
    END IF;
    UPDATE sessions SET message_count = message_count + cardinality(p_messages) - dropped
        WHERE user_id = p_user AND session_id = p_session;
    RETURN dropped;
END
$$;
"""
# The same append in fewer statements for the common case, as on SQLite
# (sqlite_session_rows.py): the session's row upserted with its new count, unless it had
# expired (then deleted, its messages with it, and made anew); the oldest messages looked
# for only when the count passes `p_max`, and the count lowered only when some went.
# Before, each append ran five statements (an expired session's DELETE, the upsert, the
# INSERT, the oldest's DELETE scanning the session's messages, the count's UPDATE: a
# second new version of the session's row).
_FEWER_STATEMENTS = """
CREATE OR REPLACE FUNCTION memory_proxy_append(
    p_user text, p_session text, p_now double precision, p_oldest_live double precision,
    p_messages bytea[], p_max integer
) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    added integer := cardinality(p_messages);
    total integer;
    dropped integer := 0;
BEGIN
    INSERT INTO sessions AS s (user_id, session_id, created, updated, message_count)
        VALUES (p_user, p_session, p_now, p_now, added)
        ON CONFLICT (user_id, session_id) DO UPDATE
        SET updated = excluded.updated, message_count = s.message_count + added
        WHERE s.updated > p_oldest_live
        RETURNING message_count INTO total;
    IF NOT FOUND THEN  -- expired: gone with its messages, begun again
        DELETE FROM sessions WHERE user_id = p_user AND session_id = p_session;
        INSERT INTO sessions (user_id, session_id, created, updated, message_count)
            VALUES (p_user, p_session, p_now, p_now, added);
        total := added;
    END IF;
    INSERT INTO messages (user_id, session_id, message)
        SELECT p_user, p_session, m FROM unnest(p_messages) WITH ORDINALITY AS t (m, n)
        ORDER BY n;
    IF total > p_max THEN
        DELETE FROM messages WHERE user_id = p_user AND session_id = p_session AND id <= (
            SELECT id FROM messages WHERE user_id = p_user AND session_id = p_session
            ORDER BY id DESC OFFSET p_max LIMIT 1);
        GET DIAGNOSTICS dropped = ROW_COUNT;
        UPDATE sessions SET message_count = message_count - dropped
            WHERE user_id = p_user AND session_id = p_session;
    END IF;
    RETURN dropped;
END
$$;
"""
MIGRATIONS: tuple[PostgresMigration, ...] = (
    PostgresMigration(1, "sessions and their messages", lambda db: run_script(db, _SESSIONS)),
    PostgresMigration(
        2, "a session's append in fewer statements", lambda db: run_script(db, _FEWER_STATEMENTS)
    ),
)
_INFO = "SELECT user_id, session_id, message_count, created, updated FROM sessions"


class PostgresStore:
    """The MemoryStore in PostgreSQL; a session keeps its newest `max_messages` (None:
    all)."""

    def __init__(
        self,
        url: str,
        ttl_seconds: int,
        clock: Callable[[], float] = time.time,
        max_messages: int | None = None,
    ) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._db = PostgresDatabase(
            url,
            "sessions",
            MIGRATIONS,
            max_size=2,
            statement_timeout_ms=int(WAIT_SECONDS * 1000),
        )
        self._rows = SessionRows(url, int(WAIT_SECONDS * 1000), clock, ttl_seconds, max_messages)
        self._thread = WorkerThread("memory-proxy-postgres-sessions")
        self._calls: BatchedCalls[SessionCall] = BatchedCalls(self._thread.run, self._rows.run)

    def _oldest_live(self) -> float:
        return self._clock() - self._ttl

    def load(self, user_id: str, session_id: str) -> asyncio.Future[list[Message]]:
        """A history nobody waits for any more (past the request's wait) is not read."""
        return self._calls.call(Load(user_id, session_id), skip_if_abandoned=True)

    def append(
        self, user_id: str, session_id: str, messages: list[Message], *, partial: bool
    ) -> asyncio.Future[int]:
        """Appends made while the thread is busy are written together when it gets to
        them: one statement for all."""
        return self._calls.call(Append(user_id, session_id, messages, partial))

    async def list_sessions(
        self, user_id: str | None, limit: int, offset: int
    ) -> list[SessionInfo]:
        async def work(db: AsyncConnection) -> list[SessionInfo]:
            mine = "" if user_id is None else "AND user_id = %s"
            params: tuple[Any, ...] = (self._oldest_live(),)
            if user_id is not None:
                params += (user_id,)
            cursor = await db.execute(
                f"{_INFO} WHERE updated > %s {mine} ORDER BY updated DESC LIMIT %s OFFSET %s",
                (*params, limit, offset),
            )
            return [self._info(row) for row in await cursor.fetchall()]

        return await self._db.read(work, WAIT_SECONDS)

    async def session(self, user_id: str, session_id: str) -> SessionInfo | None:
        async def work(db: AsyncConnection) -> SessionInfo | None:
            cursor = await db.execute(
                f"{_INFO} WHERE user_id = %s AND session_id = %s AND updated > %s",
                (user_id, session_id, self._oldest_live()),
            )
            row = await cursor.fetchone()
            return self._info(row) if row else None

        return await self._db.read(work, WAIT_SECONDS)

    async def delete(self, user_id: str, session_id: str) -> bool:
        async with self._db.connection(WAIT_SECONDS) as db:
            cursor = await db.execute(
                "DELETE FROM sessions WHERE user_id = %s AND session_id = %s",
                (user_id, session_id),
            )
            return cursor.rowcount > 0

    async def purge_expired(self) -> int:
        """In the background: it may take longer than a request's statements."""
        async with self._db.connection() as db, db.transaction():
            await db.execute(f"SET LOCAL statement_timeout = {BACKGROUND_TIMEOUT_MS}")
            cursor = await db.execute(
                "DELETE FROM sessions WHERE updated <= %s", (self._oldest_live(),)
            )
            return cursor.rowcount

    async def aclose(self) -> None:
        """What is queued is run first: the appends already made are kept."""
        await self._thread.run(self._rows.close)
        self._thread.stop()
        await self._db.aclose()

    def _info(self, row: tuple[Any, ...]) -> SessionInfo:
        user_id, session_id, count, created, updated = row
        return SessionInfo(user_id, session_id, count, created, updated, updated + self._ttl)
