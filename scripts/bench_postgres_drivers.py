"""psycopg 3 (with psycopg-pool) against asyncpg on the PostgreSQL store's memory path: the
same statements the store runs (a session's append, its load, a recall search over
10,000 memories of one project: its one statement, made by the store's own code for each
question), on one server, from one event loop.

Each driver runs twice, in turn. Per operation: the wall time (p50, p99) one at a time,
the client's CPU time (what the proxy's process spends), and the operations per second
with 32 at once on a pool of 8.
asyncpg is not one of the proxy's dependencies: install it beside, e.g.
`pip install --target /tmp/asyncpg-lib asyncpg`, and run with PYTHONPATH=/tmp/asyncpg-lib.

    PYTHONPATH=.:/tmp/asyncpg-lib .venv/bin/python -m scripts.bench_postgres_drivers [URL]

Without a URL it starts a PostgreSQL of its own (tests/postgres_support.py).
"""

from __future__ import annotations

import asyncio
import random
import re
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import psycopg
from psycopg_pool import AsyncConnectionPool

from memory_proxy.config.recall import RecallSettings
from memory_proxy.stores import (
    postgres_index,
    postgres_search,
    postgres_session_rows,
    postgres_sessions,
)
from memory_proxy.stores.packed_text import pack_bytes
from memory_proxy.stores.postgres_database import migrate
from memory_proxy.stores.recall_query import query_terms
from memory_proxy.stores.relevance import stems
from scripts.bench_recall_scale import PROJECT, USER, scaled_records
from scripts.recall_history import build_dataset

MEMORIES = 10_000
OPERATIONS = 1_000
CONCURRENT = 32
POOL = 8
APPEND = "SELECT memory_proxy_append(%s, %s, %s, %s, %s, %s)"
SCOPE = "user_id = %s AND project = %s AND session_id IS DISTINCT FROM %s AND NOT private"
Run = Callable[[str, tuple[Any, ...]], Awaitable[list[Any]]]


def numbered(statement: str) -> str:
    """psycopg's %s placeholders as asyncpg's $1, $2, ..."""
    count = iter(range(1, 100))
    return re.sub("%s", lambda _: f"${next(count)}", statement)


async def psycopg_runner(url: str) -> tuple[Run, Callable[[], Awaitable[None]]]:
    pool = AsyncConnectionPool(
        url, min_size=POOL, max_size=POOL, kwargs={"autocommit": True}, open=False
    )
    await pool.open(wait=True)

    async def run(statement: str, args: tuple[Any, ...]) -> list[Any]:
        async with pool.connection() as db:
            return await (await db.execute(statement, args)).fetchall()

    return run, pool.close


async def asyncpg_runner(url: str) -> tuple[Run, Callable[[], Awaitable[None]]]:
    import asyncpg  # type: ignore[import-not-found]  # beside the proxy's dependencies

    pool = await asyncpg.create_pool(url, min_size=POOL, max_size=POOL)

    async def run(statement: str, args: tuple[Any, ...]) -> list[Any]:
        return list(await pool.fetch(numbered(statement), *args))

    return run, pool.close


def searches(questions: list[str]) -> list[tuple[str, tuple[Any, ...]]]:
    """The statement of each question the store would search (one each, a round trip)."""
    settings = RecallSettings()
    statement = postgres_search.statement(postgres_index.COLUMNS, SCOPE)
    made = []
    for question in questions:
        if terms := stems(query_terms(question)):
            scope = (USER, PROJECT, "a-new-session")
            arguments = postgres_search.arguments(terms, settings.min_score, scope, settings.limit)
            made.append((statement, arguments))
    return made


def operations(
    searched_statements: list[tuple[str, tuple[Any, ...]]],
) -> dict[str, Callable[[int], tuple[str, tuple[Any, ...]]]]:
    message = pack_bytes(orjson.dumps({"role": "user", "content": "where is staging? " * 8}))

    def append(n: int) -> tuple[str, tuple[Any, ...]]:
        now = time.time()
        return APPEND, ("bench", f"s{n % 200}", now, now - 3600, [message, message], 200)

    def load(n: int) -> tuple[str, tuple[Any, ...]]:
        return postgres_session_rows._LOAD_MANY, (["bench"], [f"s{n % 200}"], time.time() - 3600)

    def search(n: int) -> tuple[str, tuple[Any, ...]]:
        return searched_statements[n % len(searched_statements)]

    return {"session append": append, "session load": load, "recall search": search}


async def measure(
    name: str, run: Run, make: Callable[[int], tuple[str, tuple[Any, ...]]]
) -> dict[str, float]:
    for n in range(100):  # warm: statements prepared, pages cached
        await run(*make(n))
    samples = []
    cpu_started = time.process_time()
    for n in range(OPERATIONS):
        started = time.perf_counter()
        await run(*make(n))
        samples.append((time.perf_counter() - started) * 1e6)
    cpu = (time.process_time() - cpu_started) * 1e6 / OPERATIONS

    async def client(first: int) -> None:
        for n in range(first, OPERATIONS, CONCURRENT):
            await run(*make(n))

    started = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(CONCURRENT)))
    rate = OPERATIONS / (time.perf_counter() - started)
    return {
        "p50 us": statistics.median(samples),
        "p99 us": statistics.quantiles(samples, n=100)[98],
        "client cpu us": cpu,
        f"ops/s at {CONCURRENT}": rate,
    }


async def seed(url: str) -> None:
    migrate(url, "sessions", postgres_sessions.MIGRATIONS)
    index = postgres_index.PostgresMemoryIndex(url)
    try:
        records = scaled_records(MEMORIES)
        for start in range(0, len(records), 1000):
            await index.add(records[start : start + 1000])
    finally:
        await index.aclose()
    with psycopg.connect(url, autocommit=True) as db:  # the GIN index's pending list merged
        db.execute("VACUUM ANALYZE memories")


async def main(url: str) -> None:
    await seed(url)
    dataset = build_dataset(users=2)
    questions = [asked.text for asked in (*dataset.questions, *dataset.off_topic)]
    random.Random(0).shuffle(questions)
    statements = searches(questions)
    drivers = {"psycopg": psycopg_runner, "asyncpg": asyncpg_runner}
    for driver in ("psycopg", "asyncpg", "psycopg", "asyncpg"):  # the machine's drift seen
        runner = drivers[driver]
        run, close = await runner(url)
        try:
            for operation, make in operations(statements).items():
                figures = await measure(operation, run, make)
                shown = ", ".join(f"{key} {value:.0f}" for key, value in figures.items())
                print(f"{driver:8} {operation:15} {shown}", flush=True)
        finally:
            await close()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        asyncio.run(main(sys.argv[1]))
    else:
        from tests.postgres_support import PostgresServer

        server = PostgresServer()
        try:
            asyncio.run(main(server.schema_url()))
        finally:
            server.close()
