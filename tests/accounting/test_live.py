"""The live feed: every subscriber gets each record; one that falls behind loses events
(counted) without holding the publisher; a subscription ends cleanly."""

from __future__ import annotations

import asyncio
import dataclasses

from memory_proxy.accounting.live import QUEUE_LIMIT, LiveFeed
from tests.accounting.test_usage import usage_record


def test_subscribers_get_records_and_a_slow_one_drops_the_excess() -> None:
    async def scenario() -> None:
        feed = LiveFeed()
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
