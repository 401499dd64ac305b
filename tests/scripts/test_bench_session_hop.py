"""scripts/bench_session_hop.py's driver runs every way of waiting against this checkout
(without valgrind here: the counting itself is callgrind's)."""

from __future__ import annotations

import pytest

from scripts.bench_session_hop import _DRIVER, WAYS
from tests.scripts.drivers_support import failures_of_each


@pytest.fixture(scope="module")
def failures() -> dict[str, str]:
    return failures_of_each(_DRIVER, WAYS, 2)


@pytest.mark.parametrize("way", WAYS)
def test_the_driver_runs_each_way(way: str, failures: dict[str, str]) -> None:
    assert way not in failures, failures[way]
