"""The PostgreSQL index's searches, on a pool of connections of their own, bounded by the
recall budget (search_admission.py), as the SQLite index's search thread is: a search is
taken or refused (SearchBusy) when it is asked for, so that a refused one costs its
caller no coroutine, no timer, and none of the work that only a search that runs needs
(the question's stems, the statement: `work` makes them when it runs).

Each connection's statement timeout is the budget, so the server never works for a
search nobody waits for; a search whose waiter leaves is cancelled on the server at once
while the waiter goes on without waiting for it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from psycopg import AsyncConnection

from memory_proxy.stores.postgres_database import PostgresDatabase
from memory_proxy.stores.search_admission import SearchAdmission, Ticket

SEARCH_CONNECTIONS = 4
T = TypeVar("T")


class SearchPool:
    """Runs `work(connection)` for searches `budget` seconds long at most, up to
    SEARCH_CONNECTIONS at once, on the database at `url` (already migrated)."""

    def __init__(self, url: str, budget: float) -> None:
        self._budget = budget
        self._db = PostgresDatabase(
            url,
            "memories",
            None,  # migrated by the index's other pool
            max_size=SEARCH_CONNECTIONS,
            statement_timeout_ms=max(1, round(budget * 1000)),
        )
        self._admission = SearchAdmission(budget, SEARCH_CONNECTIONS)

    def run(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> Awaitable[T]:
        """`work`'s result, to await; SearchBusy, at once, when it could not finish in
        time. Cancelling the wait cancels the search on the server."""
        return self._answer(self._admission.admit(), work)

    async def _answer(self, ticket: Ticket, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        started = time.perf_counter()
        task = asyncio.ensure_future(self._db.read(work, self._budget))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.cancel()  # cancelled on the server too, without the waiter waiting
            raise
        finally:
            self._admission.settled(ticket)
            if task.done() and not task.cancelled():
                self._admission.took(time.perf_counter() - started)

    async def aclose(self) -> None:
        await self._db.aclose()
