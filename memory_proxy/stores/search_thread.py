"""The memory index's searches, on their own connection and thread, beside its writes (WAL
lets a reader run while the writer writes): a burst of searches never holds back a write.

Recall waits for a search `recall.timeout_ms` at most (the budget); after that nobody
wants the answer. So a search whose waiter has gone is not run (checked when the thread
takes it), and one running when its waiter leaves is interrupted (`sqlite3_interrupt`:
the statement stops at its next step with "interrupted", and the thread moves on).

The queue is bounded by time (search_admission.py): so the depth is the budget over the
time of a search: 50 ms over the ~5 ms a search of 5,000 memories in one project takes
here is 10, over the ~0.5 ms of a search of a small project 100 (then capped at 64), and
halved by each answer the event loop saw late. One thread finishes no more. A search
that waited too long to be answered in time is refused when its turn comes, not run.
"""

from __future__ import annotations

import asyncio
import functools
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from memory_proxy.stores.base import SearchBusy
from memory_proxy.stores.search_admission import MAX_WAITING as MAX_WAITING
from memory_proxy.stores.search_admission import SearchAdmission, Ticket
from memory_proxy.stores.sqlite_replaced import WatchedConnection
from memory_proxy.stores.worker_thread import settle_soon

T = TypeVar("T")


@dataclass(eq=False)
class _Search:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    work: Callable[[sqlite3.Connection], Any]
    ticket: Ticket  # when the admission took it, and whether it is recall's


class SearchThread:
    """Runs `work(connection)` on one thread, in order, for searches `budget` seconds long
    at most; owns `connection` (closed by `stop`)."""

    def __init__(self, connection: WatchedConnection, budget: float) -> None:
        self._connection = connection
        self._admission = SearchAdmission(budget)
        self._searches: queue.SimpleQueue[_Search | None] = queue.SimpleQueue()
        self._running: _Search | None = None
        self._running_lock = threading.Lock()  # so that an interrupt hits only its search
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="sqlite-search", daemon=True)
        self._thread.start()

    def run(self, work: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """`work`'s result, awaited on the running loop; cancelling the wait drops the
        search or interrupts it. SearchBusy, at once, when it could not finish in time."""
        if self._closed:
            raise RuntimeError("cannot search after the index is closed")
        ticket = self._admission.admit()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        search = _Search(loop, future, work, ticket)
        future.add_done_callback(functools.partial(self._settled, search))
        self._searches.put(search)
        return future

    def stop(self) -> None:
        """Run what is queued (and still awaited), end the thread, close the connection."""
        if not self._closed:
            self._closed = True
            self._searches.put(None)
        self._thread.join()
        self._connection.close()

    def _settled(self, search: _Search, future: asyncio.Future[Any]) -> None:
        """On the loop, once the search is answered or its waiter gone."""
        self._admission.settled(search.ticket)
        if future.cancelled():
            with self._running_lock:
                if self._running is search:  # its connection is not opened anew meanwhile
                    self._connection.db.interrupt()

    def _serve(self) -> None:
        while (search := self._searches.get()) is not None:
            # Read from this thread: a cancelled future's state is set before its
            # callbacks are scheduled, so a wait that ended is seen here at once.
            if not search.future.done():
                self._run(search)

    def _run(self, search: _Search) -> None:
        try:
            db = self._connection.current()  # the file at the path, if it was replaced
        except Exception as exc:
            settle_soon(search.loop, search.future, None, exc)
            return
        if self._admission.too_late_to_start(search.ticket):
            busy = SearchBusy("the memory index is busy: a search waited too long to start")
            settle_soon(search.loop, search.future, None, busy)
            return
        with self._running_lock:
            if search.future.done():
                return
            self._running = search
        started = time.perf_counter()
        try:
            result, error = search.work(db), None
        except BaseException as exc:  # "interrupted" too: nobody waits for it
            result, error = None, exc
        with self._running_lock:
            self._running = None
        self._admission.took(time.perf_counter() - started)
        settle_soon(search.loop, search.future, result, error)
