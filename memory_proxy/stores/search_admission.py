"""Searches bounded by the recall budget: a search is taken only while those ahead of it,
at the recent time per search, leave it room to finish within the budget (with
`parallel` of them running at once); otherwise it is refused at once (SearchBusy) and
recall goes on without, counted. Queueing more would only make every search late. An idle
index always takes a search, however slow the last ones were. Used on the event loop by
the SQLite index's search thread (`too_late_to_start` on that thread) and by the
PostgreSQL index's pool of searches.

The time per search alone misjudges a busy proxy: a search's answer also waits for the
GIL (taken back after each SQLite step) and for the event loop to see it, and under 50
clients that wait was most of the budget (in process: 85% of the searches taken came
back late). So how many may wait also adapts to what came back, as TCP's window does:
each search settled past `LATE_SHARE` of the budget halves it, each in time lets one more
wait per round of searches. And a search that waited so long that, at the recent time per
search, it would settle past `LATE_SHARE` of the budget is refused when its turn comes
instead of run (SearchBusy): its request goes on at once rather than at its deadline, and
the thread moves on to searches still in time. Both hold only recall's searches (made
inside `for_recall()`), whose waiter gives up at the budget: a search of the memories API
or the memory tools, whose caller waits for its answer, is refused only by the time per
search, as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import NamedTuple

from memory_proxy.stores.base import SearchBusy

# The budget of an index whose opener names none: recall.timeout_ms's default (config/
# recall.py; tests/test_recall_config.py checks they agree), written here so that the
# indexes import no config (the index process imports the SQLite one: each start costs
# less). The proxy and the CLI open theirs with the configured budget (open.py).
DEFAULT_BUDGET = 0.05
# Waiting searches at most, whatever the time per search says: it is not known before the
# first search, and 64 of the fastest measured (0.5 ms) fill most of a 50 ms budget.
MAX_WAITING = 64
SMOOTHING = 0.2  # the weight of the latest search in the running time per search
# A search settled after this share of the budget says the queue is too deep: the waiter
# gave up, or nearly did (then the next one, behind it, would not make it).
LATE_SHARE = 0.8
# Whether the searches made in this context are recall's (held to the budget).
_FOR_RECALL: ContextVar[bool] = ContextVar("for_recall", default=False)


def for_recall() -> _ForRecall:
    """The searches made inside (and in the tasks created inside) are recall's."""
    return _ForRecall()


class _ForRecall:
    """for_recall()'s context: a class, as each question enters one (a generator's
    context manager costs twice the time)."""

    __slots__ = ("_token",)

    def __enter__(self) -> None:
        self._token = _FOR_RECALL.set(True)

    def __exit__(self, *exc_info: object) -> None:
        _FOR_RECALL.reset(self._token)


class Ticket(NamedTuple):
    """A search taken: when, whether it is held to the budget (recall's), and whether it
    was taken behind others still waiting."""

    taken_at: float
    held: bool
    queued: bool


class SearchAdmission:
    """Counts the searches taken and not yet settled, the time per search, and how many
    may wait."""

    def __init__(
        self, budget: float, parallel: int = 1, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self.budget = budget
        self._parallel = parallel
        self._clock = clock
        self.waiting = 0  # taken and not yet settled: changed on the event loop only
        self.depth = float(MAX_WAITING)  # how many may wait: halved by late searches
        self.seconds_per_search = 0.0  # written by whoever runs the searches

    def admit(self) -> Ticket:
        """Takes one more search, or raises SearchBusy when it could not finish in time.
        Returns its ticket, for `too_late_to_start` and `settled`."""
        held = _FOR_RECALL.get()
        if self.waiting and (
            (held and self.waiting >= self.depth)
            or self.waiting >= MAX_WAITING
            or (self.waiting // self._parallel + 1) * self.seconds_per_search > self.budget
        ):
            raise _Refused(self.waiting, self.seconds_per_search, self.budget)
        queued = self.waiting > 0
        self.waiting += 1
        return Ticket(self._clock(), held, queued)

    def too_late_to_start(self, ticket: Ticket) -> bool:
        """Whether a search of recall's, taken with `ticket` and starting now, would settle past
        `LATE_SHARE` of the budget at the recent time per search: its request is better
        off going on at once than waiting out the budget for an answer too late to use.
        Never when it was taken by an idle index: then it runs, however slow the last ones
        were, so that one slow search cannot stop every later one (the time per search is
        learnt from those that run). Decided by the ticket, not by how many wait now: the
        search ahead may or may not be settled on the loop yet when this thread asks."""
        if not (ticket.held and ticket.queued):
            return False
        waited = self._clock() - ticket.taken_at
        return waited + self.seconds_per_search >= LATE_SHARE * self.budget

    def settled(self, ticket: Ticket) -> None:
        """A search taken with `ticket` is answered, or its waiter gone."""
        self.waiting -= 1
        if not ticket.held:
            return
        if self._clock() - ticket.taken_at >= LATE_SHARE * self.budget:
            self.depth = max(1.0, self.depth / 2)
        else:
            self.depth = min(float(MAX_WAITING), self.depth + 1 / self.depth)

    def took(self, seconds: float) -> None:
        self.seconds_per_search += SMOOTHING * (seconds - self.seconds_per_search)


class _Refused(SearchBusy):
    """A search refused at once, its message written only when read: most refusals are
    counted, never read (formatting it was two thirds of a refusal's 2.4 us)."""

    def __init__(self, waiting: int, seconds_per_search: float, budget: float) -> None:
        super().__init__(waiting, seconds_per_search, budget)

    def __str__(self) -> str:
        waiting, seconds_per_search, budget = self.args
        return (
            f"the memory index is busy: {waiting} searches waiting, about "
            f"{seconds_per_search * 1000:.1f} ms each, past its {budget * 1000:.0f} ms budget"
        )
