"""The default store: one SQLite file that survives restarts, holding conversations and
the usage log.

SQLite calls are blocking, so each user of the file runs them on a dedicated thread (which
also serialises them); the event loop never waits on the disk. WAL mode lets readers
proceed during writes.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

import orjson

from memory_proxy.messages import Message, mark_partial
from memory_proxy.stores.base import SessionInfo, StoreUnavailable
from memory_proxy.usage_record import FIELD_NAMES, Feedback, UsageRecord
from memory_proxy.usage_series import (
    RESOLUTIONS,
    SERIES_GROUPS,
    GroupBucket,
    Rollup,
    UsageSeries,
    checked_resolution,
    latency_buckets,
)

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
_USAGE_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    request_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    session_id TEXT,
    client TEXT NOT NULL,
    model TEXT,
    endpoint TEXT NOT NULL,
    status INTEGER NOT NULL,
    stream INTEGER NOT NULL,
    upstream_ms REAL NOT NULL,
    first_byte_ms REAL,
    total_ms REAL NOT NULL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    cost REAL,
    finish_reason TEXT
);
CREATE INDEX IF NOT EXISTS usage_by_time ON usage (time);
CREATE TABLE IF NOT EXISTS feedback (
    request_id TEXT PRIMARY KEY,
    request_time REAL NOT NULL,
    score REAL NOT NULL,
    comment TEXT NOT NULL,
    time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_by_request_time ON feedback (request_time);
CREATE TABLE IF NOT EXISTS usage_rollup (
    bucket_seconds INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    model TEXT NOT NULL,
    client TEXT NOT NULL,
    user_id TEXT NOT NULL,
    requests INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cost REAL NOT NULL,
    PRIMARY KEY (bucket_seconds, bucket, model, client, user_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS usage_latency (
    bucket_seconds INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    bin INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (bucket_seconds, bucket, kind, bin)
) WITHOUT ROWID;
"""
_ADD_TO_ROLLUP = """
INSERT INTO usage_rollup VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET
    requests = requests + excluded.requests, errors = errors + excluded.errors,
    prompt_tokens = prompt_tokens + excluded.prompt_tokens,
    completion_tokens = completion_tokens + excluded.completion_tokens,
    cost = cost + excluded.cost
"""
_ADD_TO_LATENCY = """
INSERT INTO usage_latency VALUES (?, ?, ?, ?, ?)
ON CONFLICT DO UPDATE SET count = count + excluded.count
"""
# Run after the schema, so that a file from before a column existed gets it first.
_USAGE_INDEXES = """
CREATE INDEX IF NOT EXISTS usage_by_request ON usage (request_id);
"""
_USAGE_COLUMNS = ", ".join(FIELD_NAMES)
_FEEDBACK_COLUMNS = ", ".join(f.name for f in fields(Feedback))


class SQLiteFile:
    """One connection to a SQLite file, used from its own thread."""

    def __init__(self, path: Path, schema: str) -> None:
        # Absolute: SQLite opens the -wal and -shm files later, by the name it was given.
        path = path.resolve()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.executescript(schema)
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailable(f"memory.sqlite_path: cannot use {path} ({exc})") from exc
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")

    async def run(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, work)

    def transaction(self) -> sqlite3.Connection:
        """`with file.transaction():` commits at the end, or rolls back on an error."""
        self.db.execute("BEGIN")
        return self.db

    async def aclose(self) -> None:
        await self.run(self.db.close)
        self._thread.shutdown(wait=True)


class SQLiteStore:
    def __init__(
        self, path: Path, ttl_seconds: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._file = SQLiteFile(path, _SCHEMA)
        self._db = self._file.db
        self._run = self._file.run

    def _oldest_live(self) -> float:
        return self._clock() - self._ttl

    async def load(self, user_id: str, session_id: str) -> list[Message]:
        def work() -> list[Message]:
            rows = self._db.execute(
                "SELECT m.message FROM messages m JOIN sessions s USING (user_id, session_id) "
                "WHERE m.user_id = ? AND m.session_id = ? AND s.updated > ? ORDER BY m.id",
                (user_id, session_id, self._oldest_live()),
            ).fetchall()
            return [orjson.loads(row[0]) for row in rows]

        return await self._run(work)

    async def append(
        self, user_id: str, session_id: str, messages: list[Message], *, partial: bool
    ) -> None:
        def work() -> None:
            now = self._clock()
            with self._file.transaction():
                self._db.execute(
                    "DELETE FROM sessions WHERE user_id = ? AND session_id = ? AND updated <= ?",
                    (user_id, session_id, self._oldest_live()),
                )
                self._db.execute(
                    "INSERT INTO sessions (user_id, session_id, created, updated) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET updated = excluded.updated",
                    (user_id, session_id, now, now),
                )
                self._db.executemany(
                    "INSERT INTO messages (user_id, session_id, message) VALUES (?, ?, ?)",
                    [
                        (user_id, session_id, orjson.dumps(mark_partial(m, partial)).decode())
                        for m in messages
                    ],
                )
                self._db.execute(
                    "UPDATE sessions SET message_count = message_count + ? "
                    "WHERE user_id = ? AND session_id = ?",
                    (len(messages), user_id, session_id),
                )

        await self._run(work)

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
            return cursor.rowcount > 0

        return await self._run(work)

    async def purge_expired(self) -> int:
        def work() -> int:
            cursor = self._db.execute(
                "DELETE FROM sessions WHERE updated <= ?", (self._oldest_live(),)
            )
            return cursor.rowcount

        return await self._run(work)

    async def aclose(self) -> None:
        await self._file.aclose()

    def _info(self, row: tuple[Any, ...]) -> SessionInfo:
        user_id, session_id, count, created, updated = row
        return SessionInfo(user_id, session_id, count, created, updated, updated + self._ttl)


class SQLiteUsageLog:
    """The usage log as a table (queryable with the sqlite3 shell), its newest
    `max_records` rows kept."""

    def __init__(self, path: Path, max_records: int) -> None:
        self._max_records = max_records
        self._file = SQLiteFile(path, _USAGE_SCHEMA)
        db = self._file.db
        try:
            known = {row[1] for row in db.execute("PRAGMA table_info(usage)")}
            for missing in [name for name in FIELD_NAMES if name not in known]:
                db.execute(f"ALTER TABLE usage ADD COLUMN {missing}")  # a file from before
            db.executescript(_USAGE_INDEXES)
            if db.execute("SELECT 1 FROM usage_rollup LIMIT 1").fetchone() is None:
                with self._file.transaction():  # a file from before the roll-up
                    rows = db.execute(f"SELECT {_USAGE_COLUMNS} FROM usage").fetchall()
                    self._roll_up([_record(row) for row in rows])
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"memory.sqlite_path: cannot use {path} ({exc})") from exc

    async def add(self, records: list[UsageRecord]) -> None:
        def work() -> None:
            db = self._file.db
            with self._file.transaction():
                db.executemany(
                    f"INSERT INTO usage ({_USAGE_COLUMNS}) "
                    f"VALUES ({', '.join('?' * len(FIELD_NAMES))})",
                    [tuple(record.as_dict().values()) for record in records],
                )
                trimmed = db.execute(
                    "DELETE FROM usage WHERE id <= (SELECT MAX(id) FROM usage) - ?",
                    (self._max_records,),
                ).rowcount
                self._roll_up(records)
                if trimmed:
                    self._trim_rollup()

        await self._file.run(work)

    def _roll_up(self, records: list[UsageRecord]) -> None:
        """Adds records to the roll-up tables, inside the caller's transaction."""
        db = self._file.db
        for seconds in RESOLUTIONS:
            rollup = Rollup()
            for record in records:
                rollup.add(record, seconds)
            db.executemany(
                _ADD_TO_ROLLUP,
                [(seconds, *key, *values) for key, values in rollup.counts.items()],
            )
            db.executemany(
                _ADD_TO_LATENCY,
                [(seconds, *key, count) for key, count in rollup.latency.items()],
            )

    def _trim_rollup(self) -> None:
        """Forgets the buckets that ended before the oldest record kept (the one it falls
        in still counts the records trimmed from it)."""
        db = self._file.db
        (oldest,) = db.execute("SELECT MIN(time) FROM usage").fetchone()
        if oldest is None:
            return
        for seconds in RESOLUTIONS:
            for table in ("usage_rollup", "usage_latency"):
                db.execute(
                    f"DELETE FROM {table} WHERE bucket_seconds = ? AND bucket < ?",
                    (seconds, int(oldest // seconds)),
                )

    async def since(self, moment: float) -> list[UsageRecord]:
        def work() -> list[UsageRecord]:
            rows = self._file.db.execute(
                f"SELECT {_USAGE_COLUMNS} FROM usage WHERE time >= ? ORDER BY id", (moment,)
            ).fetchall()
            return [_record(row) for row in rows]

        return await self._file.run(work)

    async def find(self, request_id: str) -> UsageRecord | None:
        def work() -> UsageRecord | None:
            row = self._file.db.execute(
                f"SELECT {_USAGE_COLUMNS} FROM usage WHERE request_id = ? ORDER BY id DESC LIMIT 1",
                (request_id,),
            ).fetchone()
            return _record(row) if row else None

        return await self._file.run(work)

    async def series(self, first: int, last: int, bucket_seconds: int, group: str) -> UsageSeries:
        """From the roll-up tables: a few rows per bucket, however many records."""
        if group not in SERIES_GROUPS.values():
            raise ValueError(f"cannot group by {group!r}")  # never reaches the SQL text
        window = (checked_resolution(bucket_seconds), first, last)

        def work() -> UsageSeries:
            db = self._file.db
            rows = db.execute(
                f"SELECT bucket, {group}, SUM(requests), SUM(errors), SUM(prompt_tokens), "
                "SUM(completion_tokens), SUM(cost) FROM usage_rollup "
                "WHERE bucket_seconds = ? AND bucket BETWEEN ? AND ? GROUP BY 1, 2 ORDER BY 1, 2",
                window,
            ).fetchall()
            latency = db.execute(
                "SELECT bucket, kind, bin, count FROM usage_latency "
                "WHERE bucket_seconds = ? AND bucket BETWEEN ? AND ?",
                window,
            ).fetchall()
            return UsageSeries(
                [GroupBucket(b, g or None, n, e, p, c, cost) for b, g, n, e, p, c, cost in rows],
                latency_buckets(latency),
            )

        return await self._file.run(work)

    async def add_feedback(self, feedback: Feedback) -> None:
        def work() -> None:
            db = self._file.db
            with self._file.transaction():
                db.execute(
                    f"INSERT OR REPLACE INTO feedback ({_FEEDBACK_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                    tuple(feedback.as_dict().values()),
                )
                db.execute(
                    "DELETE FROM feedback WHERE rowid <= (SELECT MAX(rowid) FROM feedback) - ?",
                    (self._max_records,),
                )

        await self._file.run(work)

    async def feedback_since(self, moment: float) -> list[Feedback]:
        def work() -> list[Feedback]:
            rows = self._file.db.execute(
                f"SELECT {_FEEDBACK_COLUMNS} FROM feedback WHERE request_time >= ?", (moment,)
            ).fetchall()
            return [Feedback(*row) for row in rows]

        return await self._file.run(work)

    async def aclose(self) -> None:
        await self._file.aclose()


def _record(row: tuple[Any, ...]) -> UsageRecord:
    return UsageRecord.from_dict(dict(zip(FIELD_NAMES, row, strict=True)))
