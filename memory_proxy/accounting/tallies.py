"""Request counts and times tallied in plain numbers on the event loop, and moved into
their prometheus_client children whenever the registry is collected (a scrape, a read
of one sample).

prometheus_client takes a lock and several calls per increment: a histogram's observe
costs ~9,300 instructions, a counter's inc ~5,300 (callgrind, prometheus_client 0.26),
and every forwarded request made one count and two observations, ~24k instructions of
the ~560k its hop costs. A tally's is a list index and an addition.

What a scrape shows does not change: the tallies reach the children before any of them
is read (`TallyFlush`, the registry's first collector), with the values the library
would have counted: the same bucket for every value (NaN in none), a sum added up in the
same order from the same start (`set`, not a second sum added), whole counts.

One process only: workers (--workers) share their values through files that any worker
reads at a scrape, so there every observation goes to the library at once. Tallies are
made and moved on the event loop's thread (the /metrics endpoint is async).
"""

from __future__ import annotations

from bisect import bisect_left

from prometheus_client import Counter, Histogram


class CountTally:
    """A counter child's increments, tallied."""

    __slots__ = ("_child", "_count")

    def __init__(self, child: Counter) -> None:
        self._child = child
        self._count = 0

    def inc(self) -> None:
        self._count += 1

    def flush(self) -> None:
        if self._count:
            count, self._count = self._count, 0
            self._child.inc(count)


class HistogramTally:
    """A histogram child's observations, tallied by bucket, and its running sum."""

    __slots__ = ("_bounds", "_buckets", "_child", "_sum", "_unflushed")

    def __init__(self, child: Histogram) -> None:
        self._child = child
        # The library's own state: what it would change on each observation.
        self._bounds: list[float] = child._upper_bounds
        self._buckets = [0] * len(self._bounds)
        self._sum: float = child._sum.get()
        self._unflushed = False

    def observe(self, amount: float) -> None:
        bounds = self._bounds
        index = bisect_left(bounds, amount)  # the first bound >= amount, as the library
        if index < len(bounds) and amount <= bounds[index]:  # finds it; NaN finds none
            self._buckets[index] += 1
        self._sum += amount
        self._unflushed = True

    def flush(self) -> None:
        if not self._unflushed:
            return
        self._unflushed = False
        child = self._child
        child._sum.set(self._sum)
        for index, count in enumerate(self._buckets):
            if count:
                child._buckets[index].inc(count)
                self._buckets[index] = 0


class Tallies:
    """One tally per child, made at its first use; `flush` moves them all."""

    def __init__(self) -> None:
        self._counts: dict[int, CountTally] = {}
        self._histograms: dict[int, HistogramTally] = {}

    def counter(self, child: Counter) -> CountTally:
        tally = self._counts.get(id(child))
        if tally is None:
            tally = self._counts[id(child)] = CountTally(child)
        return tally

    def histogram(self, child: Histogram) -> HistogramTally:
        tally = self._histograms.get(id(child))
        if tally is None:
            tally = self._histograms[id(child)] = HistogramTally(child)
        return tally

    def flush(self) -> None:
        for count in self._counts.values():
            count.flush()
        for histogram in self._histograms.values():
            histogram.flush()


class TallyFlush:
    """Registered first in a registry, so that its collection flushes the tallies before
    any metric is read. Describes nothing, yields nothing."""

    def __init__(self, tallies: Tallies) -> None:
        self._tallies = tallies

    def describe(self) -> list[object]:
        return []

    def collect(self) -> list[object]:
        self._tallies.flush()
        return []
