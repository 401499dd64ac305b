from __future__ import annotations

import pytest

from supervisor.restart_policy import GiveUp, Restart, RestartPolicy, RestartTracker

POLICY = RestartPolicy(
    initial_delay=1, max_delay=8, multiplier=2, jitter=0.1, stable_after=30, max_fast_failures=4
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("run_lengths", "expected"),
    [
        # each run's length in seconds -> the decision after its exit
        ([1], [Restart(1)]),
        ([1, 1, 1], [Restart(1), Restart(2), Restart(4)]),
        ([1, 1, 1, 1], [Restart(1), Restart(2), Restart(4), Restart(8)]),  # capped at 8
        ([1, 1, 60, 1], [Restart(1), Restart(2), Restart(1), Restart(2)]),  # stable run resets
        ([1, 1, 1, 1, 1], [Restart(1), Restart(2), Restart(4), Restart(8), "give up"]),
        ([60, 60, 60, 60, 60, 60], [Restart(1)] * 6),  # long runs never give up
    ],
)
def test_backoff_reset_and_give_up(run_lengths: list[float], expected: list[object]) -> None:
    clock = Clock()
    tracker = RestartTracker(POLICY, clock, uniform=lambda low, high: 0.0)
    decisions: list[object] = []
    for length in run_lengths:
        tracker.started()
        clock.now += length
        decision = tracker.exited()
        decisions.append("give up" if isinstance(decision, GiveUp) else decision)
    assert decisions == expected


@pytest.mark.parametrize("draw", [-0.1, 0.1])
def test_jitter_stays_within_its_fraction(draw: float) -> None:
    tracker = RestartTracker(POLICY, Clock(), uniform=lambda low, high: draw)
    tracker.started()
    decision = tracker.exited()
    assert isinstance(decision, Restart)
    assert decision.delay == pytest.approx(1 + draw)


def test_give_up_says_why() -> None:
    clock = Clock()
    tracker = RestartTracker(
        RestartPolicy(max_fast_failures=1, stable_after=5), clock, uniform=lambda a, b: 0
    )
    tracker.started()
    tracker.exited()
    tracker.started()
    decision = tracker.exited()
    assert isinstance(decision, GiveUp)
    assert "2 times in a row" in decision.reason and "5s" in decision.reason
