"""Where the SQLite file's bytes go per exchange, whether memory's bounds hold, and what
erasing costs (README, "The SQLite file").

1. Layout: N exchanges (default 20,000) of about 2 kB (a question of 1,000 characters and
   an answer of 1,200: slices of Python's documentation and standard library), written as
   the proxy writes them: into its session (100 exchanges a session, none trimmed), one
   long-term memory each (in batches of 50), one usage record each. Prints bytes per
   exchange (the file, and its pages in use) and per table (SQLite's dbstat). It uses
   only what the stores offered before this layout, so it also runs against an older
   checkout (PYTHONPATH names the code measured):
       git worktree add /tmp/before cc0445f
       PYTHONPATH=/tmp/before .venv/bin/python scripts/bench_file_size.py --layout-only
2. Bounded: the same exchanges dated over 60 days, with memory.retention_days 30 and
   memory.max_mb (default 24) and the default memory.max_session_messages, the pruner
   running on its timer as in the proxy (retention looked at every second, not every 10
   minutes, as the 60 days pass in seconds), while they are written as fast as the stores
   take them: the largest size seen (after each batch) and what was pruned.
3. Erasing: the time to forget one memory over indexes of 10,000 and 100,000 memories
   (the index rewritten, free pages given back, the -wal emptied), and what secure_delete
   costs: writing and deleting 2,000 sessions with it off and on.

Run: PYTHONPATH=. .venv/bin/python scripts/bench_file_size.py [--exchanges 20000]
     [--max-mb 24] [--erase-sizes 10000,100000] [--layout-only]   (about 3 minutes)
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import functools
import random
import sqlite3
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

from memory_proxy.memory.indexing import exchange_text
from memory_proxy.records.memory import MemoryRecord, memory_id
from memory_proxy.records.usage import UsageRecord
from memory_proxy.stores.sqlite import SQLiteStore
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex
from memory_proxy.stores.sqlite_usage import SQLiteUsageLog

SESSION_EXCHANGES = 100
MEMORY_BATCH = 50
DAY = 86_400.0
SPAN_DAYS = 60
RETENTION_DAYS = 30
SESSION_TTL = 3600  # memory.ttl_seconds' default


def corpus() -> tuple[str, str]:
    """Prose and code, as developers' exchanges hold, that do not change with this
    repository: Python's documentation topics (pydoc_data) and its standard library's
    first 80 modules."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    prose = (stdlib / "pydoc_data" / "topics.py").read_text()
    code = "".join(path.read_text(errors="replace") for path in sorted(stdlib.glob("*.py"))[:80])
    return prose, code


class Exchanges:
    """The same exchanges for every part: (session id, question, answer, memory text);
    questions are prose, answers prose or code, half and half."""

    def __init__(self, count: int) -> None:
        prose, code = corpus()
        rng = random.Random(1)

        def piece(text: str, length: int) -> str:
            start = rng.randrange(len(text) - length)
            return text[start : start + length]

        self.items = [
            (f"session-{n // SESSION_EXCHANGES}", q, a, exchange_text(q, a))
            for n in range(count)
            for q, a in [(piece(prose, 1000), piece(code if n % 2 else prose, 1200))]
        ]


def usage(n: int, session: str, at: float) -> UsageRecord:
    return UsageRecord(
        at, f"{n:032x}", "claude-cli", session, "claude-code", "claude-sonnet-4.5",
        "/v1/messages", 200, True, 120.0, 400.0, 3000.0, 9000, 400, 0.031, "end_turn",
    )  # fmt: skip


async def write(path: Path, exchanges: Exchanges, clock: Clock, **bounds: Any) -> Any:
    """Every exchange written as the proxy writes it, `clock` moving on by its step at
    each; with bounds, the pruner running on its timer and expired sessions purged. The
    largest pages in use and file seen after a batch, and what the pruner dropped."""
    if bounds:
        from memory_proxy.memory import pruning
        from memory_proxy.memory.pruning import MemoryPruner

        # Every 10 minutes in the proxy; the run's 60 days pass in seconds here.
        pruning.RETENTION_CHECK_SECONDS = 1.0

        sessions = SQLiteStore(path, SESSION_TTL, clock, max_messages=bounds["sessions"])
    else:
        sessions = SQLiteStore(path, 10**9, clock)
    index = SQLiteMemoryIndex(path)
    log = SQLiteUsageLog(path, 100_000)
    pruner, pruned, largest = None, collections.Counter[str](), (0, 0)
    if bounds:
        pruner = MemoryPruner(
            index,
            bounds["retention_days"],
            bounds["max_mb"],
            lambda what, count: pruned.update({what: count}),
            clock,
        )
        pruner.start()
    try:
        memories: list[MemoryRecord] = []
        records: list[UsageRecord] = []
        for n, (session, question, answer, text) in enumerate(exchanges.items):
            at = clock.tick()
            turn = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
            await sessions.append("claude-cli", session, turn, partial=False)  # type: ignore[arg-type]
            key = memory_id("claude-cli", "shop", text)
            memories.append(MemoryRecord(key, "claude-cli", "shop", session, "cc", "m", at, text))
            records.append(usage(n, session, at))
            if len(memories) == MEMORY_BATCH:
                await index.add(memories)
                await log.add(records)
                memories, records = [], []
                if bounds:
                    await sessions.purge_expired()  # the proxy's is once a minute
                largest = max(largest, sizes(path))
        await index.add(memories)
        await log.add(records)
        if pruner is not None:
            await pruner.prune()
    finally:
        if pruner is not None:
            await pruner.aclose()
        for store in (sessions, index, log):
            await store.aclose()
    return max(largest, sizes(path)), pruned


class Clock:
    """Simulated time: `tick` moves it on by `step` seconds."""

    def __init__(self, start: float, step: float) -> None:
        self.now, self.step = start, step

    def __call__(self) -> float:
        return self.now

    def tick(self) -> float:
        self.now += self.step
        return self.now


def tables(path: Path) -> list[tuple[str, int, int]]:
    """(table or index, bytes of its pages, bytes of its payload), largest first."""
    with sqlite3.connect(path) as db:
        try:
            return db.execute(
                "SELECT name, SUM(pgsize), SUM(payload) FROM dbstat GROUP BY name ORDER BY 2 DESC"
            ).fetchall()
        except sqlite3.OperationalError:  # SQLite built without dbstat
            return []


def sizes(path: Path) -> tuple[int, int]:
    """The file's bytes in use (pages in use, as memory.max_mb counts them) and on disk."""
    with sqlite3.connect(path) as db:
        (pages,), (free,), (size,) = (
            db.execute(f"PRAGMA {name}").fetchone()
            for name in ("page_count", "freelist_count", "page_size")
        )
    return int((pages - free) * size), path.stat().st_size


def wal_bytes(path: Path) -> int:
    return Path(f"{path}-wal").stat().st_size


async def layout(directory: Path, exchanges: Exchanges) -> None:
    path = directory / "layout.sqlite3"
    count = len(exchanges.items)
    started = time.perf_counter()
    await write(path, exchanges, Clock(time.time(), 0.0))
    print(f"layout: {count:,} exchanges written in {time.perf_counter() - started:.1f} s")
    in_use, size = sizes(path)
    print(f"  file {size / 2**20:.1f} MB: {size / count:,.0f} bytes per exchange "
          f"({in_use / count:,.0f} in pages in use)")  # fmt: skip
    for name, pages, payload in tables(path)[:8]:
        print(f"  {name:28} {pages / count:7,.0f} bytes per exchange ({payload / count:,.0f} data)")


async def bounded(directory: Path, exchanges: Exchanges, max_mb: float) -> None:
    from memory_proxy.config import MemorySettings

    path = directory / "bounded.sqlite3"
    count = len(exchanges.items)
    clock = Clock(time.time() - SPAN_DAYS * DAY, SPAN_DAYS * DAY / count)
    started = time.perf_counter()
    (largest_used, largest_file), pruned = await write(
        path, exchanges, clock, retention_days=RETENTION_DAYS, max_mb=max_mb,
        sessions=MemorySettings().max_session_messages,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    print(f"bounded ({count:,} exchanges over {SPAN_DAYS} days, retention_days "
          f"{RETENTION_DAYS}, max_mb {max_mb:g}): {seconds:.1f} s")  # fmt: skip
    print(f"  largest seen: {largest_used / 2**20:.2f} MB in use, file {largest_file / 2**20:.2f}"
          f" MB; under the cap: {largest_used <= max_mb * 2**20}")  # fmt: skip
    in_use, size = sizes(path)
    print(f"  at the end: {in_use / 2**20:.2f} MB in use, file {size / 2**20:.2f} MB; "
          f"pruned {dict(pruned) or 'nothing'}")  # fmt: skip


async def erase_cost(directory: Path, exchanges: Exchanges, size: int) -> None:
    path = directory / f"erase-{size}.sqlite3"
    index = SQLiteMemoryIndex(path)
    try:
        texts = [item[3] for item in exchanges.items]
        for start in range(0, size, 500):
            await index.add([
                MemoryRecord(memory_id("u", f"p{n % 200}", f"{texts[n % len(texts)]} {n}"),
                             "u", f"p{n % 200}", None, "c", "m", float(n),
                             f"{texts[n % len(texts)]} {n}")
                for n in range(start, min(size, start + 500))
            ])  # fmt: skip
        wall, cpu = time.perf_counter(), time.process_time()
        forgotten = await index.forget_oldest(1)
        await index.erase()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        await index.aclose()
    print(f"erase: forgetting {forgotten} memory of {size:,}: {wall:.2f} s ({cpu:.2f} s of CPU)")


async def secure_delete_cost(directory: Path, exchanges: Exchanges) -> None:
    """2,000 sessions of one exchange written, then deleted one by one (as DELETE
    /v1/sessions does, without emptying the -wal), with secure_delete off and on: the
    time, and the bytes each wrote to the -wal (no checkpoint meanwhile)."""
    for setting in ("OFF", "ON"):
        path = directory / f"secure-{setting}.sqlite3"
        store = SQLiteStore(path, 10**9)
        db = store._file.db  # the bench's knobs, on the store's one connection
        db.execute(f"PRAGMA secure_delete={setting}")
        db.execute("PRAGMA wal_autocheckpoint=0")
        names = [f"s{n}" for n in range(2000)]
        figures = []
        for step in ("append", "delete"):
            before, wall, cpu = wal_bytes(path), time.perf_counter(), time.process_time()
            for n, name in enumerate(names):
                if step == "append":
                    _, question, answer, _ = exchanges.items[n % len(exchanges.items)]
                    turn = [{"role": "user", "content": question},
                            {"role": "assistant", "content": answer}]  # fmt: skip
                    await store.append("u", name, turn, partial=False)  # type: ignore[arg-type]
                else:
                    await store._file.run(functools.partial(delete_session, db, name))
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            written = (wal_bytes(path) - before) / len(names) / 1024
            figures.append(f"{step} {cpu * 1e6 / len(names):.0f} us of CPU and "
                           f"{written:.1f} kB of -wal each")  # fmt: skip
        await store.aclose()
        print(f"secure_delete {setting:3}: " + "; ".join(figures))


def delete_session(db: sqlite3.Connection, name: str) -> None:
    db.execute("DELETE FROM sessions WHERE user_id = 'u' AND session_id = ?", (name,))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--exchanges", type=int, default=20_000)
    parser.add_argument("--max-mb", type=float, default=24.0)
    parser.add_argument("--erase-sizes", default="10000,100000")
    parser.add_argument("--layout-only", action="store_true")
    options = parser.parse_args()
    exchanges = Exchanges(options.exchanges)
    with tempfile.TemporaryDirectory() as directory:
        await layout(Path(directory), exchanges)
        if options.layout_only:
            return
        await bounded(Path(directory), exchanges, options.max_mb)
        for size in (int(s) for s in options.erase_sizes.split(",") if s):
            await erase_cost(Path(directory), exchanges, size)
        await secure_delete_cost(Path(directory), exchanges)


if __name__ == "__main__":
    asyncio.run(main())
