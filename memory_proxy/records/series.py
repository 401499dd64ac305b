"""Usage over time, bucket by bucket: what every usage log answers for the charts.

Buckets are 5 minutes, 1 hour or 1 day, aligned on the epoch. Latency percentiles come
from histograms with four bins per doubling (a value is reported as its bin's geometric
middle, within 9.1% of the truth), so that the SQLite log can keep them rolled up as it
writes and answer from the roll-up, never from 100,000 rows. The in-memory and Redis logs
roll their records up on demand with the same rules, and so give the same numbers.
Imported by the stores, so it imports nothing of ours but the record.
"""

from __future__ import annotations

import collections
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from memory_proxy.records.usage import UsageRecord

SERIES_GROUPS = {"model": "model", "client": "client", "user": "user_id"}  # name -> field
RESOLUTIONS = (300, 3600, 86400)  # each a multiple of the one before: buckets nest
assert all(coarser % finer == 0 for finer, coarser in itertools.pairwise(RESOLUTIONS))
BINS_PER_DOUBLING = 4
FIRST_BYTE, TOTAL = 0, 1  # the latency histograms' kinds
_SMALLEST_MS = 0.01

GroupKey = tuple[int, str, str, str]  # bucket, model ("" for none), client, user id
LatencyKey = tuple[int, int, int]  # bucket, kind, bin


@dataclass(frozen=True)
class GroupBucket:
    """The calls of one group in one bucket (`bucket` is floor(time / bucket seconds))."""

    bucket: int
    group: str | None
    requests: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    cost: float


@dataclass(frozen=True)
class LatencyBucket:
    """Percentiles of one bucket's calls; None when no call had a value."""

    bucket: int
    first_byte_p50: float | None
    first_byte_p95: float | None
    total_p50: float | None
    total_p95: float | None


@dataclass
class UsageSeries:
    groups: list[GroupBucket] = field(default_factory=list)
    latency: list[LatencyBucket] = field(default_factory=list)


@dataclass
class Rollup:
    """Counts per (bucket, model, client, user) and latency histograms per bucket: what
    the SQLite log keeps in its roll-up tables. LLM calls only: a memory tool call (a
    millisecond, no model) would only blur the charts of requests and their latency."""

    counts: dict[GroupKey, list[float]] = field(
        default_factory=lambda: collections.defaultdict(lambda: [0, 0, 0, 0, 0.0])
    )
    # A plain dict, not a Counter: Counter defines __delitem__, so each store into one
    # goes through a Python-level slot lookup of dict.__setitem__ (~1,300 instructions).
    latency: dict[LatencyKey, int] = field(default_factory=dict)

    def add(self, records: Iterable[UsageRecord], bucket_seconds: int) -> None:
        """Counts `records` in. One loop over a batch, its lookups bound once and the bins
        computed inline: record by record through method and latency_bin calls, this was
        most of the SQLite writer's Python time per record (callgrind)."""
        counts, latency, floor, log2 = self.counts, self.latency, math.floor, math.log2
        smallest, per_doubling = _SMALLEST_MS, BINS_PER_DOUBLING
        for record in records:
            if record.tool is not None:  # record.is_tool_call, without the property's call
                continue
            bucket = int(record.time // bucket_seconds)
            row = counts[(bucket, record.model or "", record.client, record.user_id)]
            row[0] += 1
            row[1] += record.status >= 400
            row[2] += record.prompt_tokens or 0
            row[3] += record.completion_tokens or 0
            row[4] += record.cost or 0.0
            ms = record.total_ms  # latency_bin(ms), inline (max(ms, smallest) as max picks)
            key = (bucket, TOTAL, floor(log2(smallest if smallest > ms else ms) * per_doubling))
            latency[key] = latency.get(key, 0) + 1
            if (first := record.first_byte_ms) is not None:
                index = floor(log2(smallest if smallest > first else first) * per_doubling)
                key = (bucket, FIRST_BYTE, index)
                latency[key] = latency.get(key, 0) + 1

    def coarser(self, factor: int) -> Rollup:
        """The same calls in buckets `factor` times as long: epoch-aligned buckets nest,
        so floor(time / (factor * seconds)) is floor(finer bucket / factor)."""
        rollup = Rollup()
        for (bucket, model, client, user_id), row in self.counts.items():
            total = rollup.counts[(bucket // factor, model, client, user_id)]
            for index, value in enumerate(row):
                total[index] += value
        latency = rollup.latency
        for (bucket, kind, index), count in self.latency.items():
            key = (bucket // factor, kind, index)
            latency[key] = latency.get(key, 0) + count
        return rollup


def rollups(records: Iterable[UsageRecord]) -> dict[int, Rollup]:
    """Each resolution's roll-up of `records`: the finest one record by record, each
    coarser one from the one before it (a few rows, however many records)."""
    finest = Rollup()
    finest.add(records, RESOLUTIONS[0])
    made = {RESOLUTIONS[0]: finest}
    for finer, coarser in itertools.pairwise(RESOLUTIONS):
        made[coarser] = made[finer].coarser(coarser // finer)
    return made


def checked_resolution(bucket_seconds: int) -> int:
    if bucket_seconds not in RESOLUTIONS:
        raise ValueError(f"buckets are one of {RESOLUTIONS} seconds")
    return bucket_seconds


def latency_bin(ms: float) -> int:
    return math.floor(math.log2(max(ms, _SMALLEST_MS)) * BINS_PER_DOUBLING)


def bin_value(index: int) -> float:
    return round(2 ** ((index + 0.5) / BINS_PER_DOUBLING), 2)


def latency_buckets(rows: Iterable[tuple[int, int, int, int]]) -> list[LatencyBucket]:
    """From (bucket, kind, bin, count) rows: p50 and p95 of each kind in each bucket, the
    middle of the first bin whose running count reaches the fraction (nearest rank)."""
    histograms: dict[int, list[list[tuple[int, int]]]] = collections.defaultdict(lambda: [[], []])
    for bucket, kind, index, count in rows:
        histograms[bucket][kind].append((index, count))
    result = []
    for bucket in sorted(histograms):
        first, total = (_percentiles(sorted(h)) for h in histograms[bucket])
        result.append(LatencyBucket(bucket, *first, *total))
    return result


def _percentiles(histogram: list[tuple[int, int]]) -> tuple[float | None, float | None]:
    count = sum(n for _, n in histogram)
    if not count:
        return None, None
    found: list[float] = []
    for fraction in (0.5, 0.95):
        rank, running = math.ceil(fraction * count), 0
        for index, n in histogram:
            running += n
            if running >= rank:
                found.append(bin_value(index))
                break
    return found[0], found[1]


def aggregate(
    records: Iterable[UsageRecord], first: int, last: int, bucket_seconds: int, group: str
) -> UsageSeries:
    """The series of buckets `first`..`last` (indexes), grouped by `group`, a
    SERIES_GROUPS value, from records (those of earlier buckets may be among them)."""
    rollup = Rollup()
    rollup.add((r for r in records if first <= r.time // bucket_seconds <= last), bucket_seconds)
    position = ("model", "client", "user_id").index(group) + 1
    grouped: dict[tuple[int, str], list[float]] = collections.defaultdict(lambda: [0, 0, 0, 0, 0.0])
    for key, values in rollup.counts.items():
        row = grouped[(key[0], str(key[position]))]
        for i, value in enumerate(values):
            row[i] += value
    series = UsageSeries(
        [
            GroupBucket(bucket, key or None, int(n), int(e), int(p), int(c), cost)
            for (bucket, key), (n, e, p, c, cost) in sorted(grouped.items())
        ],
        latency_buckets((*key, count) for key, count in rollup.latency.items()),
    )
    return series
