"""tests/support.py `wait_until`: probed often while a wait is short, seldom once it is
long (a real LiteLLM's start), and failing at its timeout as before. On a clock of its
own, advanced by each sleep, in place of the `time` module support.py sees (not of the
`time` module itself, which the worker's server threads use): the test takes no time."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests import support


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(
        support, "time", SimpleNamespace(monotonic=clock.monotonic, sleep=clock.sleep)
    )
    return clock


def test_a_long_wait_is_probed_a_few_hundred_times_and_ends_soon_after_it_could(
    clock: Clock,
) -> None:
    probes: list[float] = []

    def ready_after_30_s() -> bool:
        probes.append(clock.now)
        return clock.now >= 30.0

    support.wait_until(ready_after_30_s, timeout=120)
    assert len(probes) < 350  # every 10 ms: 3,000
    assert 30.0 <= clock.now <= 30.0 + support.LONGEST_PROBE_SECONDS
    assert max(clock.sleeps) == support.LONGEST_PROBE_SECONDS


def test_a_short_wait_is_probed_every_10_ms(clock: Clock) -> None:
    support.wait_until(lambda: clock.now >= 0.1)
    assert clock.sleeps[:10] == [support.FIRST_PROBE_SECONDS] * 10


def test_a_condition_never_met_fails_at_the_timeout(clock: Clock) -> None:
    with pytest.raises(AssertionError, match="condition not met within 3s"):
        support.wait_until(lambda: False, timeout=3)
    assert 3.0 < clock.now <= 3.0 + support.LONGEST_PROBE_SECONDS
