"""Requests per minute per user id: a token bucket, kept in this process or in Redis.

Each user's bucket holds up to `burst` tokens and refills at `requests_per_minute / 60`
per second; a request takes one. In Redis the whole step is one Lua script, so any
number of proxy instances enforce one limit.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from memory_proxy.errors import Refusal
from memory_proxy.logging_setup import log_failure

logger = logging.getLogger("memory_proxy")

LimitHeaders = list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    remaining: int
    retry_after: int  # whole seconds until a token is back; 0 when allowed


@dataclass(frozen=True)
class Bucket:
    """The arithmetic, shared by both backends (the Lua script mirrors it)."""

    requests_per_minute: int
    burst: int

    @property
    def rate(self) -> float:
        return self.requests_per_minute / 60.0

    def take(self, tokens: float, last: float, now: float) -> tuple[Verdict, float]:
        tokens = min(float(self.burst), tokens + max(0.0, now - last) * self.rate)
        if tokens >= 1.0:
            return Verdict(True, int(tokens - 1.0), 0), tokens - 1.0
        wait = math.ceil((1.0 - tokens) / self.rate)
        return Verdict(False, 0, max(1, wait)), tokens


class RateLimiter(Protocol):
    bucket: Bucket

    async def check(self, user_id: str) -> Verdict: ...

    async def aclose(self) -> None: ...


async def admit(
    limiter: RateLimiter | None, user_id: str, on_limited: Callable[[], None]
) -> LimitHeaders:
    """One request of `user_id` taken from its bucket: the headers that tell the client
    where it stands, or a `Refusal` (429, with them and Retry-After) past the limit
    (`on_limited` counts it). A limiter that fails lets the request through."""
    if limiter is None:
        return []
    try:
        verdict = await limiter.check(user_id)
    except Exception as exc:
        log_failure(logger, "rate limiter failed; request let through", exc)
        return []
    limit = limiter.bucket.requests_per_minute
    limit_headers = [
        (b"x-ratelimit-limit-requests", str(limit).encode()),
        (b"x-ratelimit-remaining-requests", str(verdict.remaining).encode()),
    ]
    if not verdict.allowed:
        on_limited()
        raise Refusal(
            429,
            f"rate limit for {user_id} reached ({limit} requests per minute)",
            retry_after=verdict.retry_after,
            headers=limit_headers,
        )
    return limit_headers


class LocalRateLimiter:
    def __init__(self, bucket: Bucket, clock: Callable[[], float] = time.monotonic) -> None:
        self.bucket = bucket
        self._clock = clock
        self._state: dict[str, tuple[float, float]] = {}

    async def check(self, user_id: str) -> Verdict:
        now = self._clock()
        tokens, last = self._state.get(user_id, (float(self.bucket.burst), now))
        verdict, left = self.bucket.take(tokens, last, now)
        self._state[user_id] = (left, now)
        return verdict

    async def aclose(self) -> None:
        self._state.clear()


# KEYS[1] bucket hash; ARGV: burst, rate per second, now (seconds), ttl (seconds)
_TAKE = """
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'last')
local tokens = tonumber(state[1]) or burst
local last = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - last) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'last', tostring(now))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return {allowed, tostring(tokens)}
"""


class RedisRateLimiter:
    """Uses Redis's own clock (TIME), so instances on different machines agree."""

    def __init__(self, url: str, bucket: Bucket) -> None:
        from memory_proxy.stores.redis import connect  # redis: when used

        self.bucket = bucket
        self._redis = connect(url)
        self._take = self._redis.register_script(_TAKE)
        self._ttl = max(60, math.ceil(bucket.burst / bucket.rate) + 1)

    async def check(self, user_id: str) -> Verdict:
        seconds, micros = await self._redis.time()
        now = seconds + micros / 1_000_000
        allowed, tokens = await self._take(
            keys=[f"memory-proxy:ratelimit:{user_id}"],
            args=[self.bucket.burst, self.bucket.rate, now, self._ttl],
        )
        left = float(tokens)
        if allowed:
            return Verdict(True, int(left), 0)
        return Verdict(False, 0, max(1, math.ceil((1.0 - left) / self.bucket.rate)))

    async def aclose(self) -> None:
        await self._redis.aclose()
