"""How many of recall's searches may wait: bounded by the time per search, and halved by
each search that came back late, as TCP's window is (a clock of the test's own); a search
the memories API or the memory tools make waits its turn."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memory_proxy.stores.base import SearchBusy
from memory_proxy.stores.search_admission import (
    LATE_SHARE,
    MAX_WAITING,
    SearchAdmission,
    Ticket,
    for_recall,
)

BUDGET = 0.05


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def taken(admission: SearchAdmission, count: int) -> list[Ticket]:
    return [admission.admit() for _ in range(count)]


def late_recalls(admission: SearchAdmission, clock: Clock, count: int = 8) -> None:
    """`count` of recall's searches taken, then answered a budget later."""
    with for_recall():
        late = taken(admission, count)  # the time per search not known yet: all taken
    clock.now += BUDGET  # their waiters gave up
    for ticket in late:
        admission.settled(ticket)


def test_searches_that_came_back_late_leave_one_waiting_at_a_time() -> None:
    clock = Clock()
    admission = SearchAdmission(BUDGET, clock=clock)
    late_recalls(admission, clock)
    with for_recall():
        first = admission.admit()  # an idle index takes a search, whatever came before
        with pytest.raises(SearchBusy):
            admission.admit()
    admission.settled(first)


def test_a_search_outside_recall_waits_its_turn_however_late_recall_was() -> None:
    clock = Clock()
    admission = SearchAdmission(BUDGET, clock=clock)
    late_recalls(admission, clock)
    asked = taken(admission, 5)  # the memories API's: the depth is recall's
    clock.now += BUDGET
    assert not admission.too_late_to_start(asked[-1])
    for ticket in asked:
        admission.settled(ticket)  # late by the clock: its caller waited, as it does
    assert admission.depth == 1.0  # recall's window left as recall left it


def test_searches_in_time_let_more_wait_again() -> None:
    clock = Clock()
    admission = SearchAdmission(BUDGET, clock=clock)
    late_recalls(admission, clock)
    one_at_a_time = admission.depth
    with for_recall():
        for _ in range(50):
            admission.settled(admission.admit())  # answered at once
        assert one_at_a_time == 1.0
        assert len(taken(admission, 9)) == 9  # the window grew back: 1 -> ~10 in 50 searches


def test_a_search_answered_before_the_late_share_of_the_budget_is_in_time() -> None:
    clock = Clock()
    admission = SearchAdmission(BUDGET, clock=clock)
    with for_recall():
        ticket = admission.admit()
    clock.now += LATE_SHARE * BUDGET * 0.99
    admission.settled(ticket)
    assert admission.depth == MAX_WAITING


@given(st.lists(st.tuples(st.integers(1, 80), st.floats(0, 2 * BUDGET)), max_size=60))
def test_how_many_may_wait_stays_between_one_and_the_cap(
    rounds: list[tuple[int, float]],
) -> None:
    clock = Clock()
    admission = SearchAdmission(BUDGET, clock=clock)
    for count, seconds in rounds:
        waiting = []
        with for_recall():
            for _ in range(count):
                try:
                    waiting.append(admission.admit())
                except SearchBusy:
                    break
        assert 1 <= len(waiting) <= max(1, admission.depth + 1)
        clock.now += seconds
        for ticket in waiting:
            admission.settled(ticket)
        assert 1.0 <= admission.depth <= MAX_WAITING
        assert admission.waiting == 0


def test_a_search_is_too_late_to_start_when_its_wait_and_a_search_reach_the_late_share() -> None:
    clock = Clock()
    admission = SearchAdmission(BUDGET, clock=clock)
    admission.took(0.01)  # the recent time per search: 2 ms (one search smoothed in)
    with for_recall():
        admission.admit()  # another search ahead of it
        ticket = admission.admit()
    clock.now += 0.030  # 30 + 2 ms: within 80% of 50 ms
    assert not admission.too_late_to_start(ticket)
    clock.now += 0.009  # 39 + 2 ms: past it
    assert admission.too_late_to_start(ticket)


def test_a_search_taken_behind_another_is_too_late_even_once_that_one_is_settled() -> None:
    clock = Clock()
    admission = SearchAdmission(BUDGET, clock=clock)
    with for_recall():
        ahead = admission.admit()
        behind = admission.admit()
    clock.now += BUDGET
    admission.settled(ahead)  # the loop saw the answer ahead before the thread asked
    assert admission.too_late_to_start(behind)


def test_the_search_an_idle_index_takes_is_never_too_late_to_start() -> None:
    clock = Clock()
    admission = SearchAdmission(BUDGET, clock=clock)
    admission.took(1.0)  # one search of a second (a file read anew): 200 ms smoothed in
    with for_recall():
        ticket = admission.admit()
    clock.now += BUDGET
    assert not admission.too_late_to_start(ticket)  # else no search would ever run again
