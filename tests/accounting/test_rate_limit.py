from __future__ import annotations

import asyncio

import httpx
import pytest

from memory_proxy.accounting.rate_limit import Bucket, LocalRateLimiter, Verdict
from memory_proxy.app import MemoryProxy
from memory_proxy.config import MemorySettings, RateLimitSettings, Settings, load_settings
from tests.conftest import ProxyFactory
from tests.fake_upstream import FakeUpstream
from tests.support import RedisServer, serve

BUCKET = Bucket(requests_per_minute=60, burst=3)  # one token a second


@pytest.mark.parametrize(
    ("tokens", "elapsed", "expected", "left"),
    [
        (3.0, 0.0, Verdict(True, 2, 0), 2.0),
        (0.0, 0.0, Verdict(False, 0, 1), 0.0),
        (0.0, 0.5, Verdict(False, 0, 1), 0.5),
        (0.0, 1.0, Verdict(True, 0, 0), 0.0),
        (0.0, 100.0, Verdict(True, 2, 0), 2.0),  # refills up to the burst, no further
    ],
)
def test_bucket_arithmetic(tokens: float, elapsed: float, expected: Verdict, left: float) -> None:
    verdict, remaining = BUCKET.take(tokens, last=10.0, now=10.0 + elapsed)
    assert verdict == expected
    assert remaining == pytest.approx(left)


def test_retry_after_counts_whole_seconds_to_the_next_token() -> None:
    slow = Bucket(requests_per_minute=6, burst=1)  # a token every 10 s
    verdict, _ = slow.take(0.25, last=0.0, now=0.0)
    assert verdict == Verdict(False, 0, 8)


def test_local_limiter_per_user_with_an_injected_clock() -> None:
    now = [0.0]
    limiter = LocalRateLimiter(BUCKET, clock=lambda: now[0])

    async def scenario() -> list[bool]:
        results = [(await limiter.check("alice")).allowed for _ in range(4)]
        results.append((await limiter.check("bob")).allowed)
        now[0] += 1.0
        results.append((await limiter.check("alice")).allowed)
        return results

    assert asyncio.run(scenario()) == [True, True, True, False, True, True]


def test_environment_switches_it_on() -> None:
    settings = load_settings(
        None, environ={"ENABLE_RATE_LIMITING": "true", "MAX_REQUESTS_PER_MINUTE": "5"}
    )
    assert settings.rate_limit == RateLimitSettings(True, 5, 10)


LIMITED = RateLimitSettings(enabled=True, requests_per_minute=1, burst=2)


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
def test_over_the_limit_is_a_429_in_the_clients_shape(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory, path: str
) -> None:
    upstream, url = fake_upstream
    with run_proxy(url, rate_limit=LIMITED) as proxy:
        answers = [httpx.post(f"{proxy}{path}", json={"model": "m"}) for _ in range(3)]
        health = httpx.get(f"{proxy}/health")
    first, second, refused = answers
    assert [a.status_code for a in answers[:2]] == [200, 200]
    assert first.headers["x-ratelimit-limit-requests"] == "1"
    assert [
        first.headers["x-ratelimit-remaining-requests"],
        second.headers["x-ratelimit-remaining-requests"],
    ] == ["1", "0"]
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    error = refused.json()
    if path == "/v1/messages":
        assert error["error"]["type"] == "rate_limit_error" and error["type"] == "error"
    else:
        assert error["error"]["type"] == "rate_limit_error"
    calls = [r.path for r in upstream.requests if r.method == "POST"]
    assert calls == [path, path]  # the refused one never left the proxy
    assert health.status_code == 200  # local endpoints are never limited


def test_two_instances_share_one_limit_through_redis(
    fake_upstream: tuple[FakeUpstream, str], redis_server: RedisServer
) -> None:
    _, url = fake_upstream
    settings = Settings(
        litellm_url=url,
        memory=MemorySettings(store="redis", redis_url=redis_server.url),
        rate_limit=LIMITED,
    )
    with serve(MemoryProxy(settings)) as first, serve(MemoryProxy(settings)) as second:
        codes = [
            httpx.post(f"{proxy}/v1/chat/completions", json={"model": "m"}).status_code
            for proxy in (first, second, first, second)
        ]
    assert codes == [200, 200, 429, 429]
