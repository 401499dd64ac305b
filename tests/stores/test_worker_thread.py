"""The store's worker thread: results, errors, order, timeouts and stopping."""

from __future__ import annotations

import asyncio
import functools
import threading

import pytest

from memory_proxy.stores.worker_thread import WorkerThread


def test_results_and_errors_come_back_in_order() -> None:
    asyncio.run(_results_and_errors_come_back_in_order())


async def _results_and_errors_come_back_in_order() -> None:
    worker = WorkerThread("test")
    done: list[int] = []

    def record(n: int) -> int:
        done.append(n)
        return n

    try:
        results = await asyncio.gather(
            *(worker.run(functools.partial(record, n)) for n in range(50))
        )
        assert results == list(range(50)) and done == list(range(50))
        with pytest.raises(ZeroDivisionError):
            await worker.run(lambda: 1 / 0)
        assert await worker.run(lambda: "still serving") == "still serving"
    finally:
        worker.stop()


def test_a_wait_that_times_out_leaves_the_thread_serving() -> None:
    asyncio.run(_a_wait_that_times_out_leaves_the_thread_serving())


async def _a_wait_that_times_out_leaves_the_thread_serving() -> None:
    worker = WorkerThread("test")
    release = threading.Event()
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await worker.run(release.wait)
        release.set()
        assert await worker.run(lambda: 42) == 42
    finally:
        release.set()
        worker.stop()


def test_stop_runs_what_is_queued_then_refuses_more() -> None:
    asyncio.run(_stop_runs_what_is_queued_then_refuses_more())


async def _stop_runs_what_is_queued_then_refuses_more() -> None:
    worker = WorkerThread("test")
    ran = threading.Event()
    queued = worker.run(ran.set)
    worker.stop()
    assert ran.is_set()
    await queued
    with pytest.raises(RuntimeError):
        worker.run(lambda: None)
