"""Requests counted and timed in plain numbers (accounting/tallies.py) read exactly as
prometheus_client's own increments would have made them, whenever they are read."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import values

from memory_proxy.accounting.metrics import Metrics
from memory_proxy.config import LiteLLMSettings, ModelEntry, Settings

SETTINGS = Settings(litellm=LiteLLMSettings(models=(ModelEntry("known", None),)))
SECONDS = st.one_of(
    st.floats(min_value=0, max_value=200),
    st.sampled_from([0.0, 0.005, 0.01, 0.25, 120.0, math.nextafter(0.1, 1), math.inf]),
    st.floats(allow_nan=True, allow_infinity=True),
)
REQUEST = st.tuples(
    st.sampled_from(["known", "x", None]),
    SECONDS,
    st.one_of(st.none(), SECONDS),
    st.sampled_from([200, 400, 502]),
    st.booleans(),  # read the metrics after this request
)


def direct() -> Metrics:
    """Every request straight into prometheus_client, as before tallies (and as workers
    still count)."""
    metrics = Metrics(SETTINGS)
    metrics._shared = True
    return metrics


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in metrics.registry.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def same(left: float, right: float) -> bool:
    return left == right or (math.isnan(left) and math.isnan(right))


@given(st.lists(REQUEST, max_size=40))
def test_tallied_metrics_read_as_the_librarys_own(
    requests: list[tuple[str | None, float, float | None, int, bool]],
) -> None:
    tallied, reference = Metrics(SETTINGS), direct()
    for model, seconds, first_byte, status, read in requests:
        for metrics in (tallied, reference):
            metrics.observe(model, seconds, first_byte, "complete")
            metrics.count("someone", model, status)
        if read:
            assert samples(tallied).keys() == samples(reference).keys()
    got, expected = samples(tallied), samples(reference)
    assert got.keys() == expected.keys()
    assert all(same(got[key], expected[key]) for key in expected), (got, expected)


def test_a_request_takes_no_lock_until_the_metrics_are_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    metrics = Metrics(SETTINGS)
    metrics.count("someone", "known", 200)
    metrics.observe("known", 0.2, 0.1, "complete")
    list(metrics.registry.collect())  # the children exist
    increments = []
    original = values.MutexValue.inc
    monkeypatch.setattr(values.MutexValue, "inc", lambda self, amount: increments.append(amount))
    for _ in range(100):
        metrics.count("someone", "known", 200)
        metrics.observe("known", 0.2, 0.1, "complete")
    assert increments == []
    monkeypatch.setattr(values.MutexValue, "inc", original)
    value = metrics.registry.get_sample_value
    labels = {"user": "other", "model": "known", "status": "200"}
    assert value("memory_proxy_requests_total", labels) == 101
    assert value("memory_proxy_request_seconds_count", {"model": "known"}) == 101
    assert value("memory_proxy_time_to_first_byte_seconds_sum", {"model": "known"}) == (
        sum([0.1] * 101)
    )
