"""The live view's feed: requests in flight and each usage record as it is made, for the
dashboard's subscribers. With nobody watching, publishing is one truth test; each
subscriber has a bounded queue, and one that falls behind loses events, never holds the
proxy."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from memory_proxy.records.usage import UsageRecord

QUEUE_LIMIT = 256


class Subscription:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[UsageRecord] = asyncio.Queue(QUEUE_LIMIT)
        self.dropped = 0


class LiveFeed:
    """`in_flight` reads the requests in flight where they are counted (the metrics)."""

    def __init__(self, in_flight: Callable[[], int]) -> None:
        self.in_flight = in_flight
        self._subscribers: set[Subscription] = set()

    def publish(self, record: UsageRecord) -> None:
        for subscriber in self._subscribers:
            try:
                subscriber.queue.put_nowait(record)
            except asyncio.QueueFull:
                subscriber.dropped += 1

    @contextmanager
    def subscribe(self) -> Iterator[Subscription]:
        subscription = Subscription()
        self._subscribers.add(subscription)
        try:
            yield subscription
        finally:
            self._subscribers.discard(subscription)
