"""The default store: one SQLite file that survives restarts, holding conversations (here)
and the usage log (sqlite_usage.py).

SQLite calls are blocking, so each user of the file runs them on a dedicated thread (which
also serialises them); the event loop never waits on the disk. WAL mode lets readers
proceed during writes: a user that reads beside its writes (the memory index's searches)
takes a second connection, `reader()`, for another thread.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, TypeVar, cast

from memory_proxy.records.messages import Message
from memory_proxy.stores.base import SessionInfo, StoreUnavailable
from memory_proxy.stores.batched_calls import BatchedCalls
from memory_proxy.stores.session_calls import Append, Load, SessionCall
from memory_proxy.stores.sqlite_migrations import SQLiteMigration, migrate, run_script
from memory_proxy.stores.sqlite_replaced import ReplacementWatch, WatchedConnection, opening
from memory_proxy.stores.sqlite_session_rows import SessionRows
from memory_proxy.stores.sqlite_space import (
    DEFAULT_BUSY_SECONDS,
    INCREMENTAL,
    JOURNAL_SIZE_LIMIT,
    allow_shrinking,
    empty_log,
    release_free_pages,
)
from memory_proxy.stores.worker_thread import WorkerThread

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    user_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    message_count INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, session_id)
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    message TEXT NOT NULL,
    FOREIGN KEY (user_id, session_id) REFERENCES sessions ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS messages_by_session ON messages (user_id, session_id, id);
CREATE INDEX IF NOT EXISTS sessions_by_update ON sessions (updated);
"""
MIGRATIONS: tuple[SQLiteMigration, ...] = (
    SQLiteMigration(1, "sessions and their messages", lambda db: run_script(db, _SCHEMA)),
)
# The longest the sessions' thread (loads are on the request path) waits for another
# connection before the log is emptied; past it, the next purge tries again.
ERASE_WAIT_SECONDS = 0.2
IN_MEMORY = ":memory:"  # a private database that lives as long as its connections
# SQLite's memdb VFS: a database named "/..." is shared by this process's connections to
# it (unlike ":memory:", one per connection) and freed with the last of them.
_MEMDB_URI = "file:/memory-proxy-{}?vfs=memdb"
_memdb_names = itertools.count()


class SQLiteFile:
    """One connection to a SQLite file (or to a private in-memory database when the path is
    IN_MEMORY), used from its own thread, and a second one for reading on another when
    asked (`reader`). A file deleted or replaced under them is noticed and opened anew
    (sqlite_replaced.py). Each opening brings the `part`'s tables up to date with its
    `migrations` (sqlite_migrations.py)."""

    def __init__(self, path: Path, part: str, migrations: tuple[SQLiteMigration, ...]) -> None:
        self._in_memory = str(path) == IN_MEMORY
        # Absolute: SQLite opens the -wal and -shm files later, by the name it was given.
        self._path = path if self._in_memory else path.resolve()
        # What SQLite opens: the path, or a memdb database that this file's connections share.
        self._address = (
            _MEMDB_URI.format(next(_memdb_names)) if self._in_memory else str(self._path)
        )
        self._part, self._migrations = part, migrations
        self._own = WatchedConnection(self._open)
        self._thread = WorkerThread("sqlite")
        self.erase_pending = False  # deleted rows may still be in the -wal

    @property
    def db(self) -> sqlite3.Connection:
        return self._own.db  # the current one: it may be opened anew

    def reader(self) -> WatchedConnection:
        """A second connection to the database, for one other thread to read with beside
        this one's writes (WAL); it refuses writes, and follows the file as `db` does."""
        return WatchedConnection(functools.partial(self._open, query_only=True))

    def _open(
        self, replacing: ReplacementWatch | None = None, *, query_only: bool = False
    ) -> tuple[sqlite3.Connection, ReplacementWatch | None]:
        if self._in_memory:
            return self._connect(query_only), None
        try:
            with opening(self._path, replacing):
                return self._connect(query_only), ReplacementWatch(self._path)
        except OSError as exc:
            raise self._unusable(exc) from exc

    def _connect(self, query_only: bool) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(
                self._address, check_same_thread=False, isolation_level=None, uri=self._in_memory
            )
        except sqlite3.Error as exc:
            raise self._unusable(exc) from exc
        try:
            # Before the first table is made, or it takes a VACUUM (sqlite_space.py).
            db.execute(f"PRAGMA auto_vacuum={INCREMENTAL}")
            db.execute("PRAGMA journal_mode=WAL")  # memdb keeps its own journal
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA secure_delete=ON")  # deleted text overwritten with zeros
            db.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
            migrate(db, f"memory.sqlite_path: {self._path}", self._part, self._migrations)
            if query_only:
                db.execute("PRAGMA query_only=ON")
            elif not self._in_memory:
                allow_shrinking(db, self._path)
        except sqlite3.Error as exc:
            db.close()  # not left open by each retry of a file that is no database
            raise self._unusable(exc) from exc
        except StoreUnavailable:  # a migration failed: it says which
            db.close()
            raise
        return db

    def _unusable(self, exc: Exception) -> StoreUnavailable:
        return StoreUnavailable(f"memory.sqlite_path: cannot use {self._path} ({exc})")

    def submit(self, work: Callable[[], T]) -> asyncio.Future[T]:
        """`work` on the file's thread, as it is: `work` calls `current` itself."""
        return self._thread.run(work)

    def current(self) -> sqlite3.Connection:
        """On the file's thread: the connection, to the file opened anew first if the one
        open was deleted or replaced (sqlite_replaced.py)."""
        return self._own.current()

    async def run(self, work: Callable[[], T]) -> T:
        if self._own.due():
            return await self._thread.run(functools.partial(self._in_the_file_at_path, work))
        return await self._thread.run(work)

    def _in_the_file_at_path(self, work: Callable[[], T]) -> T:
        """`work`, after opening the file anew if the one open was deleted or replaced."""
        self._own.current()
        return work()

    def erase_traces(self, wait: float = DEFAULT_BUSY_SECONDS) -> bool:
        """On the file's thread, after rows were deleted: the freed pages given back and
        the write-ahead log emptied, so that nothing of them is left in either file (their
        bytes in the pages were zeroed by secure_delete). False when another connection
        held the log back for `wait` seconds: `erase_pending` then says to try again."""
        release_free_pages(self.db)
        self.erase_pending = not empty_log(self.db, wait)
        return not self.erase_pending

    def transaction(self) -> sqlite3.Connection:
        """`with file.transaction():` commits at the end, or rolls back on an error.

        IMMEDIATE: the write lock is taken first, waiting for another writer of the file
        (busy timeout). A transaction that reads first and writes later gets SQLITE_BUSY
        at once, without waiting, when another connection writes meanwhile (WAL keeps
        snapshots apart) - as the index's first write did: FTS5 reads its config then."""
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    async def aclose(self) -> None:
        await self._thread.run(lambda: self.db.close())
        self._thread.stop()


class _Other(NamedTuple):
    """Any other work on the file, run in its turn among the loads and appends."""

    work: Callable[[], Any]


_Call = Load | Append | _Other


class SQLiteStore:
    """Sessions and their messages (sqlite_session_rows.py); a session keeps its newest
    `max_messages` (None: all). Every call is queued for the file's thread in the order it
    is made, and the calls queued together are taken in one hop (batched_calls.py)."""

    def __init__(
        self,
        path: Path,
        ttl_seconds: int,
        clock: Callable[[], float] = time.time,
        max_messages: int | None = None,
    ) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._max_messages = max_messages
        self._file = SQLiteFile(path, "sessions", MIGRATIONS)
        self._calls: BatchedCalls[_Call] = BatchedCalls(self._file.submit, self._run_calls)

    @property
    def _db(self) -> sqlite3.Connection:
        return self._file.db  # the file's current connection: it may be opened anew

    def _oldest_live(self) -> float:
        return self._clock() - self._ttl

    def load(self, user_id: str, session_id: str) -> asyncio.Future[list[Message]]:
        """A history nobody waits for any more (past the request's wait) is not read."""
        return self._calls.call(Load(user_id, session_id), skip_if_abandoned=True)

    def append(
        self, user_id: str, session_id: str, messages: list[Message], *, partial: bool
    ) -> asyncio.Future[int]:
        """Appends made while the file's thread is busy are written together when it gets
        to them: one transaction, one commit (most of an append's cost) for all."""
        return self._calls.call(Append(user_id, session_id, messages, partial))

    async def _run(self, work: Callable[[], T]) -> T:
        result: T = await self._calls.call(_Other(work))
        return result

    def _run_calls(self, calls: list[_Call]) -> list[Any]:
        """On the file's thread: the loads and appends between other calls together
        (sqlite_session_rows.py), the others alone, in order; each call's outcome."""
        self._file.current()
        outcomes: list[Any] = []
        for other, run in itertools.groupby(calls, lambda call: isinstance(call, _Other)):
            if other:
                outcomes += [_outcome(cast(_Other, call).work) for call in run]
            else:
                rows = SessionRows(
                    self._db,
                    self._file.transaction,
                    self._clock,
                    self._ttl,
                    self._max_messages,
                    self._expired_reset,
                )
                outcomes += rows.run(cast(list[SessionCall], list(run)))
        return outcomes

    def _expired_reset(self) -> None:
        self._file.erase_pending = True  # an expired session's rows: the next purge

    async def list_sessions(
        self, user_id: str | None, limit: int, offset: int
    ) -> list[SessionInfo]:
        def work() -> list[SessionInfo]:
            query = (
                "SELECT user_id, session_id, message_count, created, updated FROM sessions "
                "WHERE updated > ? AND (? IS NULL OR user_id = ?) "
                "ORDER BY updated DESC LIMIT ? OFFSET ?"
            )
            rows = self._db.execute(
                query, (self._oldest_live(), user_id, user_id, limit, offset)
            ).fetchall()
            return [self._info(row) for row in rows]

        return await self._run(work)

    async def session(self, user_id: str, session_id: str) -> SessionInfo | None:
        def work() -> SessionInfo | None:
            row = self._db.execute(
                "SELECT user_id, session_id, message_count, created, updated FROM sessions "
                "WHERE user_id = ? AND session_id = ? AND updated > ?",
                (user_id, session_id, self._oldest_live()),
            ).fetchone()
            return self._info(row) if row else None

        return await self._run(work)

    async def delete(self, user_id: str, session_id: str) -> bool:
        def work() -> bool:
            cursor = self._db.execute(
                "DELETE FROM sessions WHERE user_id = ? AND session_id = ?", (user_id, session_id)
            )
            if cursor.rowcount > 0:
                self._file.erase_traces(ERASE_WAIT_SECONDS)
            return cursor.rowcount > 0

        return await self._run(work)

    async def purge_expired(self) -> int:
        """Expired sessions deleted and erased (and an erasure held back before, retried)."""

        def work() -> int:
            cursor = self._db.execute(
                "DELETE FROM sessions WHERE updated <= ?", (self._oldest_live(),)
            )
            if cursor.rowcount > 0 or self._file.erase_pending:
                self._file.erase_traces(ERASE_WAIT_SECONDS)
            return cursor.rowcount

        return await self._run(work)

    async def aclose(self) -> None:
        await self._file.aclose()

    def _info(self, row: tuple[Any, ...]) -> SessionInfo:
        user_id, session_id, count, created, updated = row
        return SessionInfo(user_id, session_id, count, created, updated, updated + self._ttl)


def _outcome(work: Callable[[], T]) -> T | Exception:
    try:
        return work()
    except Exception as exc:
        return exc
