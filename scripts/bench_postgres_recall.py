"""Recall on PostgreSQL beside SQLite, measured as bench_recall.py measures SQLite's.

- paraphrase: the hand-written paraphrase set (scripts/recall_dataset.py), recall@5
  straight against each index and recall@budget through Recall at the default settings;
- history: the long histories (scripts/recall_history.py) through a running proxy at its
  defaults, once on a SQLite file and once on PostgreSQL (the same data, the same
  questions: scripts/bench_recall_history.py);
- latency: search time over 10,000 and 100,000 memories over 200 projects (20 users x
  10), and 10,000 of the long histories' memories in one project of one user (every
  search scores them all), on PostgreSQL and then on SQLite (as bench_recall.py does).

    PYTHONPATH=. .venv/bin/python -m scripts.bench_postgres_recall
        [--parts paraphrase,history,latency] [--users 8] [--searches 1000]
        [--backends postgresql,sqlite] [--sizes 10000,100000]

It starts a PostgreSQL of its own (tests/postgres_support.py: fsync off, as for tests),
an empty schema for each run, ANALYZEd before the first search as autovacuum would have.
The latency part's search budget is generous: its figures say how long a search takes,
not what recall would skip.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg

from memory_proxy.records.memory import Recalled
from memory_proxy.stores.base import MemoryIndex
from memory_proxy.stores.postgres_index import PostgresMemoryIndex
from scripts.bench_recall import latency, print_history, print_latency, print_quality, quality
from scripts.bench_recall_history import counts, figures, run
from scripts.bench_recall_scale import one_project_latency
from scripts.recall_history import USERS, build_dataset

SEARCHES = 1000
BUDGET = 10.0
PARTS = ("paraphrase", "history", "latency")
BACKENDS = ("postgresql", "sqlite")
SIZES = (10_000, 100_000)


def analyse(url: str) -> None:
    """What autovacuum does a minute after memories change: without statistics the
    planner may scan a whole project."""
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("VACUUM ANALYZE memories")


class Analysed(PostgresMemoryIndex):
    """Searched as a running database is: its memories ANALYZEd before the first search."""

    def __init__(self, url: str, search_budget: float = BUDGET) -> None:
        super().__init__(url, search_budget)
        self._url, self._analysed = url, False

    async def search(self, *args: Any, **options: Any) -> list[Recalled]:
        if not self._analysed:
            analyse(self._url)
            self._analysed = True
        return await super().search(*args, **options)


def paraphrase(directory: Path, schema_url: Callable[[], str]) -> None:
    """The paraphrase set on SQLite, then on PostgreSQL."""
    for name, index in (("SQLite", None), ("PostgreSQL", Analysed(schema_url()))):
        print(f"\n{name}:", end="")
        print_quality(asyncio.run(quality(directory, index)))


def history(directory: Path, schema_url: Callable[[], str], users: int) -> None:
    """The long histories through a proxy on SQLite, then on PostgreSQL."""
    dataset = build_dataset(users=users)
    rows = {}
    asked, counters, _ = run(directory, dataset, "history-sqlite")
    rows["SQLite, defaults"] = figures(asked) | {f"proxy {k}": v for k, v in counters.items()}
    url = schema_url()
    memory: dict[str, object] = {"store": "postgres", "postgres_url": url}
    asked, counters, _ = run(
        directory, dataset, "history-pg", memory=memory, seeded=lambda: analyse(url)
    )
    rows["PostgreSQL, defaults"] = figures(asked) | {f"proxy {k}": v for k, v in counters.items()}
    print_history({"set": counts(dataset), "rows": rows, "one project": []})


async def latencies(
    directory: Path,
    schema_url: Callable[[], str],
    searches: int,
    backends: Sequence[str] = BACKENDS,
    sizes: Sequence[int] = SIZES,
) -> None:
    """Each case on PostgreSQL, then on a SQLite file, in the same minutes (the
    `backends` named); `sizes`: memories over 200 projects."""
    dataset = build_dataset(users=2)
    questions = [asked.text for asked in (*dataset.questions, *dataset.off_topic)]
    random.Random(0).shuffle(questions)
    made: dict[str, Callable[[], MemoryIndex | None]] = {
        "PostgreSQL": lambda: Analysed(schema_url()),
        "SQLite": lambda: None,  # a new file in the directory
    }
    for name, opened in made.items():
        if name.lower() not in backends:
            continue
        print(f"\n{name}:", end="")
        print_latency([await latency(directory, size, searches, index=opened()) for size in sizes])
        one = await one_project_latency(directory, 10_000, questions, searches, opened())
        print("one project: " + ", ".join(f"{key} {value:.2f}" for key, value in one.items()))


def main(
    schema_url: Callable[[], str],
    parts: list[str],
    users: int,
    searches: int,
    backends: Sequence[str] = BACKENDS,
    sizes: Sequence[int] = SIZES,
) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-postgres-recall-") as temporary:
        directory = Path(temporary)
        if "paraphrase" in parts:
            paraphrase(directory, schema_url)
        if "history" in parts:
            history(directory, schema_url, users)
        if "latency" in parts:
            asyncio.run(latencies(directory, schema_url, searches, backends, sizes))


if __name__ == "__main__":
    from tests.postgres_support import PostgresServer

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default=",".join(PARTS), help=f"of {', '.join(PARTS)}")
    parser.add_argument("--users", type=int, default=USERS, help="long histories generated")
    parser.add_argument("--searches", type=int, default=SEARCHES, help="searches per size")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="latency on these")
    parser.add_argument(
        "--sizes",
        default=",".join(map(str, SIZES)),
        help="latency: memories over 200 projects (one project: always 10,000)",
    )
    args = parser.parse_args()
    chosen = [part for part in args.parts.split(",") if part]
    if unknown := set(chosen) - set(PARTS):
        parser.error(f"--parts: unknown {', '.join(sorted(unknown))}")
    backends = [name for name in args.backends.split(",") if name]
    if unknown := set(backends) - set(BACKENDS):
        parser.error(f"--backends: unknown {', '.join(sorted(unknown))}")
    sizes = [int(size) for size in args.sizes.split(",") if size]
    server = PostgresServer()
    try:
        main(server.schema_url, chosen, args.users, args.searches, backends, sizes)
    finally:
        server.close()
