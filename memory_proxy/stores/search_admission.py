"""Searches bounded by the recall budget: a search is taken only while those ahead of it,
at the recent time per search, leave it room to finish within the budget (with
`parallel` of them running at once); otherwise it is refused at once (SearchBusy) and
recall goes on without, counted. Queueing more would only make every search late. An idle
index always takes a search, however slow the last ones were. Used on the event loop by
the SQLite index's search thread and by the PostgreSQL index's pool of searches."""

from __future__ import annotations

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


class SearchAdmission:
    """Counts the searches taken and not yet settled, and the time per search."""

    def __init__(self, budget: float, parallel: int = 1) -> None:
        self.budget = budget
        self._parallel = parallel
        self.waiting = 0  # taken and not yet settled: changed on the event loop only
        self.seconds_per_search = 0.0  # written by whoever runs the searches

    def admit(self) -> None:
        """Takes one more search, or raises SearchBusy when it could not finish in time."""
        if self.waiting and (
            self.waiting >= MAX_WAITING
            or (self.waiting // self._parallel + 1) * self.seconds_per_search > self.budget
        ):
            raise SearchBusy(
                f"the memory index is busy: {self.waiting} searches waiting, about "
                f"{self.seconds_per_search * 1000:.1f} ms each, past its "
                f"{self.budget * 1000:.0f} ms budget"
            )
        self.waiting += 1

    def settled(self) -> None:
        self.waiting -= 1

    def took(self, seconds: float) -> None:
        self.seconds_per_search += SMOOTHING * (seconds - self.seconds_per_search)
