"""What only the PostgreSQL index does: statistics gathered after an import, so that the
planner searches a project by the words' index rather than scanning it (before
autovacuum's ANALYZE, a minute later, one project's search took 15-30 ms at the p50)."""

from __future__ import annotations

import asyncio

import psycopg

from memory_proxy.stores.postgres_index import PostgresMemoryIndex
from tests.stores.sqlite_index_support import memory


def rows_known(url: str) -> float:
    """What the planner believes the table holds (-1: never analysed)."""
    with psycopg.connect(url) as db:
        row = db.execute(
            "SELECT reltuples FROM pg_class WHERE oid = 'memories'::regclass"
        ).fetchone()
    assert row is not None
    return float(row[0])


def test_an_import_is_analysed_as_it_goes(postgres_url: str) -> None:
    async def add(count: int, every: int) -> None:
        index = PostgresMemoryIndex(postgres_url)
        index.analyse_every = every
        try:
            await index.add([memory(f"note {n} of {count}", at=n) for n in range(count)])
        finally:
            await index.aclose()

    asyncio.run(add(3, every=10))
    assert rows_known(postgres_url) == -1
    asyncio.run(add(12, every=10))
    assert rows_known(postgres_url) == 15
