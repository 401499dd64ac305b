"""Recall's search time on PostgreSQL, measured as bench_recall.py measures SQLite's: 10,000
and 100,000 memories over 200 projects (20 users x 10), and 10,000 of the long-history
benchmark's memories in one project of one user (every search scores them all).

    PYTHONPATH=. .venv/bin/python -m scripts.bench_postgres_recall

It starts a PostgreSQL of its own (tests/postgres_support.py: fsync off, as for tests),
an empty schema for each run, ANALYZEd before the first search. The search budget is
generous: the figures say how long a search takes, not what recall would skip.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from memory_proxy.records.memory import Recalled
from memory_proxy.stores.postgres_index import PostgresMemoryIndex
from scripts.bench_recall import latency, print_latency
from scripts.bench_recall_scale import one_project_latency
from scripts.recall_history import build_dataset

SEARCHES = 1000
BUDGET = 10.0


class Analysed(PostgresMemoryIndex):
    """Searched as a running database is: its memories ANALYZEd (autovacuum does it a
    minute after they change; without statistics the planner may scan a whole project)."""

    def __init__(self, url: str) -> None:
        super().__init__(url, BUDGET)
        self._url, self._analysed = url, False

    async def search(self, *args: Any, **options: Any) -> list[Recalled]:
        if not self._analysed:
            with psycopg.connect(self._url, autocommit=True) as db:
                db.execute("VACUUM ANALYZE memories")
            self._analysed = True
        return await super().search(*args, **options)


async def main(schema_url: Callable[[], str]) -> None:
    directory = Path(tempfile.mkdtemp())
    rows = []
    for size in (10_000, 100_000):
        index = Analysed(schema_url())
        rows.append(await latency(directory, size, SEARCHES, index=index))
    print_latency(rows)
    dataset = build_dataset(users=2)
    questions = [asked.text for asked in (*dataset.questions, *dataset.off_topic)]
    random.Random(0).shuffle(questions)
    index = Analysed(schema_url())
    one = await one_project_latency(directory, 10_000, questions, SEARCHES, index)
    print(", ".join(f"{key} {value:.2f}" for key, value in one.items()))


if __name__ == "__main__":
    from tests.postgres_support import PostgresServer

    server = PostgresServer()
    try:
        asyncio.run(main(server.schema_url))
    finally:
        server.close()
