"""scripts/bench_threads.py: a proxy's CPU split into its event loop, its other threads one
by one, and its children."""

from __future__ import annotations

import os

import pytest

from scripts.bench_threads import per_request, thread_times


def test_the_event_loop_is_the_main_thread_and_new_threads_count_whole() -> None:
    before = {(10, 10): 1.0, (10, 11): 0.5, (20, 20): 0.25}
    after = {(10, 10): 1.5, (10, 11): 0.75, (20, 20): 0.5, (20, 21): 0.5}
    loop, threads, children = per_request(10, before, after, 1000)
    assert loop == pytest.approx(500.0)
    assert threads == [pytest.approx(250.0)]  # the process's other thread
    assert children == pytest.approx(750.0)  # 0.25 + 0.5 (a thread started meanwhile)


def test_thread_times_holds_this_process_main_thread() -> None:
    times = thread_times(os.getpid())
    assert (os.getpid(), os.getpid()) in times
    assert all(seconds >= 0 for seconds in times.values())
