"""The live feed: every subscriber gets each record; one that falls behind loses events
(counted) without holding the publisher; a subscription ends cleanly."""

from __future__ import annotations

import asyncio
import dataclasses

import httpx

from memory_proxy.accounting.live import QUEUE_LIMIT, LiveFeed
from tests.accounting.usage_support import usage_record
from tests.conftest import ProxyFactory
from tests.fake_upstream import FakeUpstream


def test_subscribers_get_records_and_a_slow_one_drops_the_excess() -> None:
    async def scenario() -> None:
        feed = LiveFeed(lambda: 0)
        feed.publish(usage_record(request_id="nobody-watching"))
        with feed.subscribe() as fast, feed.subscribe() as slow:
            feed.publish(usage_record(request_id="first"))
            assert (await fast.queue.get()).request_id == "first"
            for index in range(QUEUE_LIMIT + 5):
                feed.publish(dataclasses.replace(usage_record(), request_id=f"r{index}"))
            assert slow.queue.qsize() == QUEUE_LIMIT
            assert (slow.dropped, fast.dropped) == (6, 5)
            assert (await slow.queue.get()).request_id == "first"
        feed.publish(usage_record(request_id="after"))  # no subscriber left: nothing kept
        assert fast.queue.qsize() == QUEUE_LIMIT

    asyncio.run(scenario())


def test_the_state_event_counts_the_requests_in_flight_where_the_metrics_do(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    """One count of requests in flight (the gauge), read by the live view too."""
    upstream, url = fake_upstream
    with run_proxy(url) as proxy, httpx.Client(base_url=proxy, timeout=10) as client:
        with (
            client.stream("GET", "/stream?events=2"),  # held open after its first event
            client.stream("GET", "/v1/live") as live,
        ):
            state = next(
                line for line in live.iter_lines() if line.startswith('data: {"in_flight"')
            )
        upstream.release.set()
    assert state == 'data: {"in_flight":1}'
