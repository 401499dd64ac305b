"""Sessions stored by another checkout's own code, in its own format, for scripts/bench
--compare: run as a file with PYTHONPATH naming that checkout, so that it imports only
that checkout's `memory_proxy` (an older commit's too), nothing else of this repository.

    python scripts/bench_seed_driver.py SQLITE_PATH USER SESSIONS EXCHANGE_JSON

SQLITE_PATH may be a PostgreSQL URL (`postgresql://…`): the sessions go there
(`memory.store: postgres`).
"""

from __future__ import annotations

import asyncio
import json
import sys
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


if __name__ == "__main__":
    path, user, sessions, exchange = sys.argv[1:5]
    asyncio.run(seed(path, user, int(sessions), json.loads(exchange)))
