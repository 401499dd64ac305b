"""The index's search thread, on a real SQLite connection: a search whose waiter left is
not run, a running one is interrupted when its waiter leaves, and the searches waiting
are bounded by what fits the time budget."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from memory_proxy.stores.base import SearchBusy
from memory_proxy.stores.search_admission import for_recall
from memory_proxy.stores.search_thread import MAX_WAITING, SearchThread
from memory_proxy.stores.sqlite_replaced import WatchedConnection
from tests.support import eventually

# Counts to ten billion: minutes of work, unless interrupted.
ENDLESS = (
    "WITH RECURSIVE n(x) AS (SELECT started() UNION ALL SELECT x + 1 FROM n WHERE x < 1e10) "
    "SELECT max(x) FROM n"
)


@asynccontextmanager
async def search_thread(tmp_path: Path, budget: float = 10.0) -> AsyncIterator[SearchThread]:
    connection = sqlite3.connect(tmp_path / "index.sqlite3", check_same_thread=False)
    searches = SearchThread(WatchedConnection(lambda replacing: (connection, None)), budget)
    try:
        yield searches
    finally:
        with contextlib.suppress(sqlite3.ProgrammingError):  # closed already
            connection.interrupt()  # a failing test leaves no endless search behind
        searches.stop()


class Gate:
    """A search that holds the thread until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, db: sqlite3.Connection) -> object:
        self.entered.set()
        self.release.wait(10)
        return "gate"


def counted(runs: list[int], number: int) -> Callable[[sqlite3.Connection], int]:
    def work(db: sqlite3.Connection) -> int:
        runs.append(number)
        return int(db.execute("SELECT ?", (number,)).fetchone()[0])

    return work


def test_a_search_whose_waiter_left_is_never_run(tmp_path: Path) -> None:
    asyncio.run(_a_search_whose_waiter_left_is_never_run(tmp_path))


async def _a_search_whose_waiter_left_is_never_run(tmp_path: Path) -> None:
    runs: list[int] = []
    gate = Gate()
    async with search_thread(tmp_path) as searches:
        held = searches.run(gate)
        await eventually(gate.entered.is_set)
        abandoned = [searches.run(counted(runs, n)) for n in range(1, 11)]
        for future in abandoned:
            future.cancel()
        gate.release.set()
        assert await held == "gate"
        assert await searches.run(counted(runs, 99)) == 99
    assert runs == [99]


def test_a_running_search_is_interrupted_when_its_waiter_leaves(tmp_path: Path) -> None:
    asyncio.run(_a_running_search_is_interrupted_when_its_waiter_leaves(tmp_path))


async def _a_running_search_is_interrupted_when_its_waiter_leaves(tmp_path: Path) -> None:
    started = threading.Event()
    outcome: list[BaseException] = []

    def endless(db: sqlite3.Connection) -> object:
        def signal() -> int:
            started.set()
            return 1

        db.create_function("started", 0, signal)
        try:
            return db.execute(ENDLESS).fetchone()
        except BaseException as exc:
            outcome.append(exc)
            raise

    async with search_thread(tmp_path) as searches:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):  # the recall budget
                await searches.run(endless)
        async with asyncio.timeout(10):  # not minutes: the thread has moved on
            assert await searches.run(lambda db: db.execute("SELECT 42").fetchone()[0]) == 42
    assert started.is_set()
    assert [str(exc) for exc in outcome] == ["interrupted"]


def test_a_waiter_leaving_once_its_search_ran_spares_the_next_one(tmp_path: Path) -> None:
    asyncio.run(_a_waiter_leaving_once_its_search_ran_spares_the_next_one(tmp_path))


async def _a_waiter_leaving_once_its_search_ran_spares_the_next_one(tmp_path: Path) -> None:
    """Its interrupt comes after its statement: the search after it still runs."""
    finishing = threading.Event()

    def first(db: sqlite3.Connection) -> int:
        value = int(db.execute("SELECT 1").fetchone()[0])
        finishing.wait(10)  # still this search's turn, its statement done
        return value

    async with search_thread(tmp_path) as searches:
        running = searches.run(first)
        after = searches.run(lambda db: db.execute("SELECT 2").fetchone()[0])
        left = asyncio.Event()
        running.add_done_callback(lambda _: left.set())  # after the thread's own callback
        running.cancel()
        await left.wait()
        finishing.set()
        assert await after == 2


def test_an_idle_thread_takes_a_search_then_only_what_fits_the_budget(
    tmp_path: Path,
) -> None:
    asyncio.run(_an_idle_thread_takes_a_search_then_only_what_fits_the_budget(tmp_path))


async def _an_idle_thread_takes_a_search_then_only_what_fits_the_budget(
    tmp_path: Path,
) -> None:
    def slow(db: sqlite3.Connection) -> object:
        time.sleep(0.01)  # a search of at least 10 ms
        return None

    async with search_thread(tmp_path, budget=0.05) as searches:
        for _ in range(30):
            await searches.run(slow)
        gate = Gate()
        held = searches.run(gate)  # idle: taken, however slow the last ones were
        await eventually(gate.entered.is_set)
        taken = [held]
        with pytest.raises(SearchBusy, match=r"busy: .* past its 50 ms budget"):
            while len(taken) < MAX_WAITING:
                taken.append(searches.run(slow))
        assert len(taken) <= 5  # 50 ms over searches of 10 ms or more
        gate.release.set()
        for outcome in await asyncio.gather(*taken, return_exceptions=True):
            # each is answered, or refused once it had waited too long to start
            assert outcome in ("gate", None) or isinstance(outcome, SearchBusy)
        assert await searches.run(lambda db: "idle again") == "idle again"


def test_the_waiting_searches_are_capped_before_any_is_timed(tmp_path: Path) -> None:
    asyncio.run(_the_waiting_searches_are_capped_before_any_is_timed(tmp_path))


async def _the_waiting_searches_are_capped_before_any_is_timed(tmp_path: Path) -> None:
    gate = Gate()
    async with search_thread(tmp_path) as searches:
        taken = [searches.run(gate)]
        taken += [searches.run(lambda db: None) for _ in range(MAX_WAITING - 1)]
        with pytest.raises(SearchBusy):
            searches.run(lambda db: None)
        gate.release.set()
        await asyncio.gather(*taken)


def test_stop_runs_what_is_awaited_then_refuses_more(tmp_path: Path) -> None:
    asyncio.run(_stop_runs_what_is_awaited_then_refuses_more(tmp_path))


async def _stop_runs_what_is_awaited_then_refuses_more(tmp_path: Path) -> None:
    async with search_thread(tmp_path) as searches:
        queued = searches.run(lambda db: db.execute("SELECT 7").fetchone()[0])
        searches.stop()
        assert await queued == 7
        with pytest.raises(RuntimeError):
            searches.run(lambda db: None)


def test_answers_a_busy_loop_saw_late_leave_one_search_waiting_at_a_time(
    tmp_path: Path,
) -> None:
    asyncio.run(_answers_a_busy_loop_saw_late_leave_one_search_waiting_at_a_time(tmp_path))


async def _answers_a_busy_loop_saw_late_leave_one_search_waiting_at_a_time(
    tmp_path: Path,
) -> None:
    async with search_thread(tmp_path, budget=0.05) as searches:
        with for_recall():
            answers = [searches.run(lambda db: db.execute("SELECT 1").fetchone()) for _ in range(6)]
        busy_until = time.perf_counter() + 0.06  # the event loop busy with other requests:
        while time.perf_counter() < busy_until:  # the searches run, their answers seen late
            pass
        for outcome in await asyncio.gather(*answers, return_exceptions=True):
            # answered, or (a busy machine: the thread late to each) refused as too late
            assert outcome == (1,) or isinstance(outcome, SearchBusy)
        gate = Gate()
        with for_recall():
            held = searches.run(gate)  # idle: taken
            with pytest.raises(SearchBusy):
                searches.run(lambda db: None)
        gate.release.set()
        assert await held == "gate"


def test_a_search_that_waited_too_long_to_start_is_refused_not_run(tmp_path: Path) -> None:
    asyncio.run(_a_search_that_waited_too_long_to_start_is_refused_not_run(tmp_path))


async def _a_search_that_waited_too_long_to_start_is_refused_not_run(tmp_path: Path) -> None:
    ran: list[int] = []
    async with search_thread(tmp_path, budget=0.05) as searches:
        gate = Gate()
        with for_recall():
            held = searches.run(gate)
            behind = searches.run(counted(ran, 1))
        await eventually(gate.entered.is_set)
        await asyncio.sleep(0.05)  # the budget spent waiting behind the held search
        gate.release.set()
        with pytest.raises(SearchBusy, match="waited too long to start"):
            await behind  # at once: its request goes on without, not at its deadline
        assert ran == []
        assert await held == "gate"
