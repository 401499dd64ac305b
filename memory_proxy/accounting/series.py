"""The charts' time series: a usage log's buckets laid out as dense arrays, one value per
bucket from the one holding `since` to the one holding `until`, so a chart needs no gap
filling."""

from __future__ import annotations

import collections
import math
from typing import Any

from memory_proxy.records.series import SERIES_GROUPS, UsageSeries

BUCKETS = {"5m": 300, "1h": 3600, "1d": 86400}
DEFAULT_BUCKETS_BACK = 24  # without `since`: the last 24 buckets
MAX_BUCKETS = 2000
_COUNTS = ("requests", "errors", "total_tokens", "cost")
_LATENCIES = ("first_byte_p50", "first_byte_p95", "total_p50", "total_p95")


def checked_bucket(text: str) -> int:
    if text not in BUCKETS:
        raise ValueError(f"bucket must be one of {', '.join(BUCKETS)}")
    return BUCKETS[text]


def checked_series_group(group_by: str) -> str:
    """The record field to group by."""
    if group_by not in SERIES_GROUPS:
        raise ValueError(f"group_by must be one of {', '.join(SERIES_GROUPS)}")
    return SERIES_GROUPS[group_by]


def checked_window(since: float | None, until: float, bucket_seconds: int) -> tuple[int, int]:
    """The first and last bucket (indexes): from `since`, or DEFAULT_BUCKETS_BACK buckets
    back, to `until`; at most MAX_BUCKETS."""
    last = math.floor(until / bucket_seconds)
    first = last - DEFAULT_BUCKETS_BACK if since is None else math.floor(since / bucket_seconds)
    if last - first + 1 > MAX_BUCKETS:
        raise ValueError(f"at most {MAX_BUCKETS} buckets: choose a larger bucket or a later since")
    return first, last


def series_view(
    data: UsageSeries, first: int, last: int, bucket_seconds: int, group_by: str
) -> dict[str, Any]:
    count = max(last - first + 1, 0)

    def zeros() -> dict[str, list[float]]:
        return {name: [0] * count for name in _COUNTS}

    groups: dict[str, dict[str, list[float]]] = collections.defaultdict(zeros)
    total = zeros()
    for row in data.groups:
        slot = row.bucket - first
        if not 0 <= slot < count:
            continue
        values = (row.requests, row.errors, row.prompt_tokens + row.completion_tokens, row.cost)
        for arrays in (groups[row.group or "none"], total):
            for name, value in zip(_COUNTS, values, strict=True):
                arrays[name][slot] += value
    latency: dict[str, list[float | None]] = {name: [None] * count for name in _LATENCIES}
    for bucket in data.latency:
        slot = bucket.bucket - first
        if 0 <= slot < count:
            for name in _LATENCIES:
                latency[name][slot] = getattr(bucket, name)
    for arrays in (*groups.values(), total):
        arrays["cost"] = [round(cost, 6) for cost in arrays["cost"]]
    ordered = sorted(groups.items(), key=lambda item: (-sum(item[1]["requests"]), item[0]))
    return {
        "object": "usage.series",
        "bucket_seconds": bucket_seconds,
        "since": first * bucket_seconds,
        "until": (last + 1) * bucket_seconds,
        "group_by": group_by,
        "times": [(first + slot) * bucket_seconds for slot in range(count)],
        "groups": [{group_by: key, **arrays} for key, arrays in ordered],
        "total": total,
        "latency": latency,
    }
