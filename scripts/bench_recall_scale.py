"""Recall's search time over the generated histories scaled up, all in one project of
one user (every search then scores all of its matching memories: the costliest case).

Histories are generated until there are `size` distinct memory texts (identical ones
are one memory, as the proxy stores them); the questions asked are the long-history
benchmark's, on-topic and off-topic, searched as Recall asks the index at the default
settings (`recall.limit`, the share of the question's weight an answered question's
block is filled down to, recall.py's `fill_floor`; a new session left out), through the
index's own search thread.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from memory_proxy.config.recall import RecallSettings
from memory_proxy.memory.indexing import exchange_text
from memory_proxy.memory.recall import fill_floor
from memory_proxy.records.memory import MemoryRecord, memory_id
from memory_proxy.stores.base import MemoryIndex
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex
from scripts.bench_recall_history import seed
from scripts.recall_history import scaled_exchanges

USER, PROJECT = "scale-user", "scale-project"
WARM_UP = 50  # first searches, not counted: they fill the page cache


def scaled_records(size: int) -> list[MemoryRecord]:
    """`size` distinct memories of one user and project, from generated histories."""
    records: dict[str, MemoryRecord] = {}
    wanted = size
    while len(records) < size:
        for exchange in scaled_exchanges(wanted):
            text = exchange_text(exchange.question, exchange.answer)
            record_id = memory_id(USER, PROJECT, text)
            records.setdefault(
                record_id,
                MemoryRecord(
                    record_id,
                    USER,
                    PROJECT,
                    exchange.session,
                    exchange.client,
                    "bench",
                    exchange.at,
                    text,
                ),
            )
        wanted += size - len(records) + size // 10
    return list(records.values())[:size]


async def one_project_latency(
    directory: Path,
    size: int,
    questions: Sequence[str],
    searches: int,
    index: MemoryIndex | None = None,
) -> dict[str, float]:
    """p50/p99 of wall time and mean CPU time per search over `size` memories, in a new
    SQLite file or the empty `index` given (which it closes)."""
    settings = RecallSettings()
    records = scaled_records(size)
    path = directory / f"one-project-{size}.sqlite3"
    index = index or SQLiteMemoryIndex(path)
    try:
        started = time.perf_counter()
        await seed(index, records)
        add_seconds = time.perf_counter() - started
        samples: list[float] = []
        cpu = 0.0
        hits = 0
        for n in range(searches + WARM_UP):
            text = questions[n % len(questions)]
            started, cpu_started = time.perf_counter(), time.process_time()
            found = await index.search(
                USER,
                PROJECT,
                text,
                limit=settings.limit,
                exclude_session="a-new-session",
                min_share=settings.min_score,
                fill_share=fill_floor(settings),
            )
            elapsed = time.perf_counter() - started
            if n >= WARM_UP:
                samples.append(elapsed * 1000)
                cpu += time.process_time() - cpu_started
                hits += len(found)
        return {
            "memories": size,
            "search p50 ms": statistics.median(samples),
            "search p99 ms": statistics.quantiles(samples, n=100, method="inclusive")[98],
            "search cpu ms": cpu * 1000 / len(samples),
            "hits/search": hits / len(samples),
            "add records/s (a session per call)": size / add_seconds,
            "file MB": (path.stat().st_size if path.exists() else await index.used_bytes()) / 1e6,
        }
    finally:
        await index.aclose()
