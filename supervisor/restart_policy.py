"""When to restart a crashed child, and when to give up: pure logic over an injected clock.

Exponential backoff with jitter, capped; a run that lasted the stability window resets it;
too many fast failures in a row means something is wrong that restarting will not fix.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RestartPolicy:
    initial_delay: float = 1.0
    max_delay: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.1  # +/- this fraction of the delay, so restarts do not synchronise
    stable_after: float = 30.0  # seconds a run must last to count as good
    max_fast_failures: int = 5


@dataclass(frozen=True)
class Restart:
    delay: float


@dataclass(frozen=True)
class GiveUp:
    reason: str


class RestartTracker:
    """Feed it each start and exit; it answers Restart(delay) or GiveUp(reason)."""

    def __init__(
        self,
        policy: RestartPolicy,
        clock: Callable[[], float],
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._uniform = uniform
        self._started_at: float | None = None
        self.fast_failures = 0

    def started(self) -> None:
        self._started_at = self._clock()

    def exited(self) -> Restart | GiveUp:
        policy = self._policy
        ran_for = self._clock() - (self._started_at if self._started_at is not None else 0.0)
        if ran_for >= policy.stable_after:
            self.fast_failures = 0
        self.fast_failures += 1
        if self.fast_failures > policy.max_fast_failures:
            return GiveUp(
                f"LiteLLM failed {self.fast_failures} times in a row, each within "
                f"{policy.stable_after:g}s of starting"
            )
        delay = min(
            policy.max_delay, policy.initial_delay * policy.multiplier ** (self.fast_failures - 1)
        )
        delay *= 1 + self._uniform(-policy.jitter, policy.jitter)
        return Restart(round(delay, 3))
