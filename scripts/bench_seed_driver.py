"""Sessions and long-term memories stored by another checkout's own code, in its own
format, for scripts/bench --compare: run as a file with PYTHONPATH naming that checkout, so
that it imports only that checkout's `memory_proxy` (an older commit's too), nothing else
of this repository.

    python scripts/bench_seed_driver.py SQLITE_PATH USER SESSIONS EXCHANGE_JSON
    python scripts/bench_seed_driver.py --memories SQLITE_PATH RECORDS_JSON_FILE

SQLITE_PATH may be a PostgreSQL URL (`postgresql://…`): the sessions go there
(`memory.store: postgres`). Memories go into the checkout's long-term index; a checkout
from before recall has none, and they are left out (said on stderr).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from memory_proxy.config import MemorySettings

try:
    from memory_proxy.stores.open import open_store
except ImportError:
    try:  # a commit from before stores/open.py: the package's __init__ opened the stores
        from memory_proxy.stores import open_store  # type: ignore[attr-defined,no-redef]
    except ImportError:  # a commit from before stores/ (a5748bb)
        from memory_proxy.memory_store import open_store  # type: ignore[import-not-found,no-redef]


def settings(target: str) -> MemorySettings:
    if target.startswith(("postgresql://", "postgres://")):
        return MemorySettings(store="postgres", postgres_url=target)
    return MemorySettings(store="sqlite", sqlite_path=Path(target))


async def seed(target: str, user: str, sessions: int, exchange: list[Any]) -> None:
    store = open_store(settings(target))
    try:
        for index in range(sessions):
            await store.append(user, f"s{index}", exchange, partial=False)
    finally:
        await store.aclose()


def memory_index_opener() -> Callable[[MemorySettings], Any] | None:
    """The checkout's `open_memory_index`, or None when it has no long-term index."""
    try:
        from memory_proxy.stores.open import open_memory_index
    except ImportError:
        try:  # before stores/open.py
            from memory_proxy.stores import open_memory_index  # type: ignore[attr-defined,no-redef]
        except ImportError:
            return None
    return open_memory_index


async def seed_memories(target: str, rows: list[dict[str, Any]]) -> None:
    """`rows` (MemoryRecord fields) added to the checkout's index, 500 per call; the
    fields its MemoryRecord does not know are left out."""
    opener = memory_index_opener()
    if opener is None:
        print("no long-term index in this checkout: its memories left out", file=sys.stderr)
        return
    from memory_proxy.records.memory import MemoryRecord

    known = {field.name for field in dataclasses.fields(MemoryRecord)}
    records = [MemoryRecord(**{k: v for k, v in row.items() if k in known}) for row in rows]
    index = opener(settings(target))
    try:
        for start in range(0, len(records), 500):
            await index.add(records[start : start + 500])
    finally:
        await index.aclose()


if __name__ == "__main__":
    if sys.argv[1] == "--memories":
        target, records_file = sys.argv[2:4]
        asyncio.run(seed_memories(target, json.loads(Path(records_file).read_text())))
    else:
        path, user, sessions, exchange = sys.argv[1:5]
        asyncio.run(seed(path, user, int(sessions), json.loads(exchange)))
