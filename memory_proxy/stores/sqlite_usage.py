"""The usage log in the SQLite file: the `usage` table (queryable with the sqlite3 shell),
the feedback on it, and the roll-up tables the charts' series are read from."""

from __future__ import annotations

import math
import sqlite3
from dataclasses import fields
from pathlib import Path
from typing import Any

from memory_proxy.records.series import (
    RESOLUTIONS,
    SERIES_GROUPS,
    GroupBucket,
    UsageSeries,
    checked_resolution,
    latency_buckets,
    rollups,
)
from memory_proxy.records.usage import FIELD_NAMES, Feedback, UsageRecord
from memory_proxy.stores.sqlite import SQLiteFile
from memory_proxy.stores.sqlite_bulk import insert_rows, insert_values
from memory_proxy.stores.sqlite_migrations import SQLiteMigration, run_script

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
    finish_reason TEXT,
    tool TEXT,
    hits INTEGER,
    recalled_tokens INTEGER
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
# A batch's records and roll-up rows in a few multi-row statements (sqlite_bulk.py).
_ADD_TO_ROLLUP = """ON CONFLICT DO UPDATE SET
    requests = requests + excluded.requests, errors = errors + excluded.errors,
    prompt_tokens = prompt_tokens + excluded.prompt_tokens,
    completion_tokens = completion_tokens + excluded.completion_tokens,
    cost = cost + excluded.cost
"""
_ADD_TO_LATENCY = "ON CONFLICT DO UPDATE SET count = count + excluded.count"
# Run after the schema, so that a file from before a column existed gets it first.
_USAGE_INDEXES = """
CREATE INDEX IF NOT EXISTS usage_by_request ON usage (request_id);
"""
_USAGE_COLUMNS = ", ".join(FIELD_NAMES)
_FEEDBACK_COLUMNS = ", ".join(f.name for f in fields(Feedback))
# sqlite3 binds an int, float or str as it is, but passes None or a bool through its
# adapter protocol first: a failed `__adapt__` lookup whose AttributeError message is
# formatted and dropped, ~3,300 instructions a value (callgrind; 6 values a record, a
# third of the writer thread's work). SQLite stores a NaN bound as a double as NULL
# (any column), so None goes as NaN and the stream flag as 0 or 1: the same rows.
_NAN = math.nan
_STREAM = FIELD_NAMES.index("stream")


class SQLiteUsageLog:
    """The usage log as a table (queryable with the sqlite3 shell), its newest
    `max_records` rows kept."""

    def __init__(self, path: Path, max_records: int) -> None:
        self._max_records = max_records
        self._file = SQLiteFile(path, "usage", MIGRATIONS)

    async def add(self, records: list[UsageRecord]) -> None:
        def work() -> None:
            db = self._file.db
            with self._file.transaction():
                insert_values(
                    db, f"INSERT INTO usage ({_USAGE_COLUMNS})", _values(records), len(FIELD_NAMES)
                )
                trimmed = db.execute(
                    "DELETE FROM usage WHERE id <= (SELECT MAX(id) FROM usage) - ?",
                    (self._max_records,),
                ).rowcount
                _roll_up(db, records)
                if trimmed:
                    self._trim_rollup()

        await self._file.run(work)

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

    async def latest(self, limit: int, user_id: str | None = None) -> list[UsageRecord]:
        def work() -> list[UsageRecord]:
            rows = self._file.db.execute(
                f"SELECT {_USAGE_COLUMNS} FROM usage WHERE ?1 IS NULL OR user_id = ?1 "
                "ORDER BY id DESC LIMIT ?2",
                (user_id, limit),
            ).fetchall()
            return [_record(row) for row in reversed(rows)]

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


def _usage_tables(db: sqlite3.Connection) -> None:
    """The tables, and a file from before a column, an index or the roll-up tables
    brought up to date (inside the migration's transaction)."""
    run_script(db, _USAGE_SCHEMA)
    known = {row[1] for row in db.execute("PRAGMA table_info(usage)")}
    for missing in [name for name in FIELD_NAMES if name not in known]:
        db.execute(f"ALTER TABLE usage ADD COLUMN {missing}")
    run_script(db, _USAGE_INDEXES)
    if db.execute("SELECT 1 FROM usage_rollup LIMIT 1").fetchone() is None:
        rows = db.execute(f"SELECT {_USAGE_COLUMNS} FROM usage").fetchall()
        _roll_up(db, [_record(row) for row in rows])


MIGRATIONS: tuple[SQLiteMigration, ...] = (
    SQLiteMigration(1, "usage records, feedback and their roll-ups", _usage_tables),
)


def _roll_up(db: sqlite3.Connection, records: list[UsageRecord]) -> None:
    """Adds records to the roll-up tables, inside the caller's transaction."""
    counts: list[tuple[Any, ...]] = []
    latency: list[tuple[Any, ...]] = []
    for seconds, rollup in rollups(records).items():
        counts += [(seconds, *key, *values) for key, values in rollup.counts.items()]
        latency += [(seconds, *key, count) for key, count in rollup.latency.items()]
    insert_rows(db, "INSERT INTO usage_rollup", counts, _ADD_TO_ROLLUP)
    insert_rows(db, "INSERT INTO usage_latency", latency, _ADD_TO_LATENCY)


def _values(records: list[UsageRecord]) -> list[Any]:
    """The records' values one after the other, as bound without sqlite3's adapters
    (see _NAN), built in one comprehension over the batch."""
    values = [_NAN if value is None else value for r in records for value in r.__dict__.values()]
    values[_STREAM :: len(FIELD_NAMES)] = [1 if record.stream else 0 for record in records]
    return values


def _record(row: tuple[Any, ...]) -> UsageRecord:
    return UsageRecord.from_dict(dict(zip(FIELD_NAMES, row, strict=True)))
