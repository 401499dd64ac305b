"""Batches written in a few statements: insert_rows keeps every value as bound in a few
shapes of statement, and a batch of 2,000 memories or usage records is a few dozen
statements, not thousands (each one a GIL hand-off between the file's thread and the
event loop)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from memory_proxy.records.memory import MemoryRecord, memory_id
from memory_proxy.records.usage import UsageRecord
from memory_proxy.stores.sqlite import SQLiteFile
from memory_proxy.stores.sqlite_bulk import insert_rows
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex
from memory_proxy.stores.sqlite_usage import SQLiteUsageLog
from tests.accounting.usage_support import NOW, usage_record


async def statements_while(file: SQLiteFile, work: Awaitable[None]) -> list[str]:
    """The statements the file's connection ran while `work` ran; not those SQLite runs
    inside one (FTS5's own, '-- ...'): they cost no hand-off."""
    ran: list[str] = []

    def trace(statement: str) -> None:
        if not statement.startswith("-- "):
            ran.append(statement)

    await file.run(lambda: file.db.set_trace_callback(trace))
    await work
    await file.run(lambda: file.db.set_trace_callback(None))
    return ran


def memories(count: int, tag: str) -> list[MemoryRecord]:
    texts = [f"User: hi\nAssistant: noted {tag} {n} (reference {n * 7919:x})" for n in range(count)]
    return [
        MemoryRecord(memory_id("alice", "shop", t), "alice", "shop", None, "curl", "m", 1.0, t)
        for t in texts
    ]


def test_a_batch_of_memories_is_a_few_statements_however_many(tmp_path: Path) -> None:
    async def main() -> None:
        index = SQLiteMemoryIndex(tmp_path / "memory.sqlite3")
        try:
            await index.add(memories(3, "warm"))
            await index.add(memories(20, "few"))
            many = await statements_while(index._file, index.add(memories(2000, "many")))
            assert len(many) <= 30, many  # 8,010 on 082e0b6 (27 here)
            again = memories(2000, "many")[:5] + memories(2, "new")
            await index.add(again + again)  # stored already, or twice in the batch
            assert (await index.use()).memories == 3 + 20 + 2000 + 2
            found = await index.search("alice", "shop", "noted many 1999", limit=1)
            assert [hit.record.text for hit in found] == [memories(2000, "many")[1999].text]
        finally:
            await index.aclose()

    asyncio.run(main())


def usage_records(count: int) -> list[UsageRecord]:
    """Over several models, minutes and latencies: several roll-up rows per bucket."""
    return [
        usage_record(
            request_id=f"r{n}",
            time=NOW + n * 0.7,
            model=f"model-{n % 3}",
            total_ms=1.0 + n % 97,
            cost=n / 1000,
        )
        for n in range(count)
    ]


def test_a_batch_of_usage_records_is_a_few_statements_however_many(tmp_path: Path) -> None:
    async def main() -> None:
        log = SQLiteUsageLog(tmp_path / "usage.sqlite3", 100_000)
        try:
            await log.add(usage_records(3))
            await log.add(usage_records(20))
            many = await statements_while(log._file, log.add(usage_records(2000)))
            assert len(many) <= 30, many  # 2,211 on 082e0b6 (24 here)
            assert await log.since(0) == usage_records(3) + usage_records(20) + usage_records(2000)
        finally:
            await log.aclose()

    asyncio.run(main())


VALUES = st.one_of(
    st.none(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.text(st.characters(exclude_categories=["Cs"])),  # NUL too
    st.binary(),
)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 4).flatmap(lambda width: st.lists(st.tuples(*[VALUES] * width), max_size=600)),
    st.integers(1, 2000),
)
def test_rows_are_kept_as_bound_in_a_few_shapes_of_statement(
    rows: list[tuple[Any, ...]], variables: int
) -> None:
    width = len(rows[0]) if rows else 1
    variables = max(variables, width)
    db = sqlite3.connect(":memory:", isolation_level=None)  # no BEGIN of its own
    db.execute(f"CREATE TABLE t ({', '.join(f'c{n}' for n in range(width))})")
    db.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, variables)
    ran: list[str] = []
    db.set_trace_callback(ran.append)
    insert_rows(db, "INSERT INTO t", rows)
    db.set_trace_callback(None)
    assert db.execute("SELECT * FROM t ORDER BY rowid").fetchall() == rows
    shapes = {statement.count("(") for statement in ran}  # rows per statement
    assert len(shapes) <= 5  # each parsed once, then cached
    assert len(ran) <= len(rows) // max(1, min(256, variables // width) // 4 * 4) + 12
