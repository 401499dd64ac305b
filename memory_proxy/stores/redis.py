"""The shared store: several proxy instances on one Redis see the same conversations and
one usage log (a capped stream).

Per conversation, a list of messages and a small hash, both expiring after the TTL of
inactivity (Redis removes them itself); sorted-set indexes by last update serve the
session listing. Short socket timeouts keep a dead Redis from holding requests, and
redis-py reconnects by itself when Redis is back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import cast

import orjson
import redis.asyncio as redis

from memory_proxy.records.messages import Message, mark_partial
from memory_proxy.records.series import UsageSeries, aggregate, checked_resolution
from memory_proxy.records.usage import Feedback, UsageRecord
from memory_proxy.stores.base import SessionInfo

SOCKET_TIMEOUT_SECONDS = 0.5
_PREFIX = "memory-proxy"
_ALL_SESSIONS = f"{_PREFIX}:sessions"
_USAGE_STREAM = f"{_PREFIX}:usage"
_FEEDBACK_STREAM = f"{_PREFIX}:feedback"
_USAGE_PAGE = 1000


def connect(url: str) -> redis.Redis:
    """A client whose short timeouts keep a dead Redis from holding requests."""
    return redis.Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
        decode_responses=True,
    )


def _conversation(user_id: str, session_id: str) -> str:
    # "/" never appears in ids (client_detection.VALID_ID), so keys cannot collide.
    return f"{user_id}/{session_id}"


class RedisStore:
    """A session keeps its newest `max_messages` (None: all)."""

    def __init__(
        self,
        url: str,
        ttl_seconds: int,
        clock: Callable[[], float] = time.time,
        max_messages: int | None = None,
    ) -> None:
        self._redis = connect(url)
        self._ttl = ttl_seconds
        self._clock = clock
        self._max_messages = max_messages

    @staticmethod
    def _keys(user_id: str, session_id: str) -> tuple[str, str]:
        name = _conversation(user_id, session_id)
        return f"{_PREFIX}:messages:{name}", f"{_PREFIX}:session:{name}"

    async def load(self, user_id: str, session_id: str) -> list[Message]:
        messages, _ = self._keys(user_id, session_id)
        return [orjson.loads(item) for item in await self._redis.lrange(messages, 0, -1)]

    async def append(
        self, user_id: str, session_id: str, messages: list[Message], *, partial: bool
    ) -> int:
        messages_key, session_key = self._keys(user_id, session_id)
        user_index = f"{_PREFIX}:sessions:{user_id}"
        now = self._clock()
        name = _conversation(user_id, session_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.rpush(messages_key, *(orjson.dumps(mark_partial(m, partial)) for m in messages))
            if self._max_messages is not None:
                pipe.ltrim(messages_key, -self._max_messages, -1)
            pipe.hsetnx(session_key, "created", now)
            pipe.hset(session_key, "updated", now)
            pipe.hincrby(session_key, "count", len(messages))
            for key in (messages_key, session_key, user_index):
                pipe.expire(key, self._ttl)
            pipe.zadd(_ALL_SESSIONS, {name: now})
            pipe.zadd(user_index, {session_id: now})
            length, *_ = await pipe.execute()
        dropped = 0 if self._max_messages is None else max(0, length - self._max_messages)
        if dropped:
            await self._redis.hincrby(session_key, "count", -dropped)
        return dropped

    async def list_sessions(
        self, user_id: str | None, limit: int, offset: int
    ) -> list[SessionInfo]:
        oldest = self._clock() - self._ttl
        index = _ALL_SESSIONS if user_id is None else f"{_PREFIX}:sessions:{user_id}"
        members = await self._redis.zrevrangebyscore(
            index, "+inf", f"({oldest}", start=offset, num=limit
        )
        names = [str(member) for member in members]  # decode_responses: already text
        pairs = [
            tuple(name.split("/", 1)) if user_id is None else (user_id, name) for name in names
        ]
        infos = [await self.session(owner, session) for owner, session in pairs]
        return [info for info in infos if info is not None]

    async def session(self, user_id: str, session_id: str) -> SessionInfo | None:
        _, session_key = self._keys(user_id, session_id)
        fields = {str(k): str(v) for k, v in (await self._redis.hgetall(session_key)).items()}
        if not fields:
            return None
        updated = float(fields["updated"])
        return SessionInfo(
            user_id,
            session_id,
            int(fields.get("count", 0)),
            float(fields.get("created", updated)),
            updated,
            updated + self._ttl,
        )

    async def delete(self, user_id: str, session_id: str) -> bool:
        messages_key, session_key = self._keys(user_id, session_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(messages_key, session_key)
            pipe.zrem(_ALL_SESSIONS, _conversation(user_id, session_id))
            pipe.zrem(f"{_PREFIX}:sessions:{user_id}", session_id)
            deleted, *_ = await pipe.execute()
        return bool(deleted)

    async def purge_expired(self) -> int:
        """Redis expires the conversations; only the listing index needs trimming."""
        removed: int = await self._redis.zremrangebyscore(
            _ALL_SESSIONS, "-inf", self._clock() - self._ttl
        )
        return removed

    async def aclose(self) -> None:
        await self._redis.aclose()


class RedisUsageLog:
    """One stream of JSON records, capped at `max_records` by Redis itself."""

    def __init__(self, url: str, max_records: int) -> None:
        self._redis = connect(url)
        self._max_records = max_records

    async def add(self, records: list[UsageRecord]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for record in records:
                pipe.xadd(
                    _USAGE_STREAM,
                    {"record": orjson.dumps(record.as_dict())},
                    maxlen=self._max_records,
                    approximate=False,
                )
            await pipe.execute()

    async def since(self, moment: float) -> list[UsageRecord]:
        """Entry ids start with Redis's clock in milliseconds: the range starts there."""
        records: list[UsageRecord] = []
        start = str(int(moment * 1000))
        while True:
            page = cast(
                list[tuple[str, dict[str, str]]],
                await self._redis.xrange(_USAGE_STREAM, min=start, count=_USAGE_PAGE),
            )
            for _, entry in page:
                record = UsageRecord.from_dict(orjson.loads(entry["record"]))
                if record.time >= moment:
                    records.append(record)
            if len(page) < _USAGE_PAGE:
                return records
            start = "(" + page[-1][0]

    async def find(self, request_id: str) -> UsageRecord | None:
        """Newest first, matching the raw text before decoding anything: feedback mostly
        rates a recent answer, and the stream has no index by request id."""
        needle = orjson.dumps({"request_id": request_id})[1:-1].decode()
        end = "+"
        while True:
            page = cast(
                list[tuple[str, dict[str, str]]],
                await self._redis.xrevrange(_USAGE_STREAM, max=end, count=_USAGE_PAGE),
            )
            for _, entry in page:
                if needle in entry["record"]:
                    record = UsageRecord.from_dict(orjson.loads(entry["record"]))
                    if record.request_id == request_id:
                        return record
            if len(page) < _USAGE_PAGE:
                return None
            end = "(" + page[-1][0]

    async def latest(self, limit: int, user_id: str | None = None) -> list[UsageRecord]:
        """Newest first, a page at a time, until `limit` are found."""
        found: list[UsageRecord] = []
        end = "+"
        while len(found) < limit:
            page = cast(
                list[tuple[str, dict[str, str]]],
                await self._redis.xrevrange(_USAGE_STREAM, max=end, count=_USAGE_PAGE),
            )
            for _, entry in page:
                record = UsageRecord.from_dict(orjson.loads(entry["record"]))
                if user_id is None or record.user_id == user_id:
                    found.append(record)
            if len(page) < _USAGE_PAGE:
                break
            end = "(" + page[-1][0]
        return found[:limit][::-1]

    async def series(self, first: int, last: int, bucket_seconds: int, group: str) -> UsageSeries:
        records = await self.since(first * checked_resolution(bucket_seconds))
        return aggregate(records, first, last, bucket_seconds, group)

    async def add_feedback(self, feedback: Feedback) -> None:
        await self._redis.xadd(
            _FEEDBACK_STREAM,
            {"feedback": orjson.dumps(feedback.as_dict())},
            maxlen=self._max_records,
            approximate=False,
        )

    async def feedback_since(self, moment: float) -> list[Feedback]:
        """The stream in order, so a later rating of the same request replaces the first."""
        entries = cast(list[tuple[str, dict[str, str]]], await self._redis.xrange(_FEEDBACK_STREAM))
        latest: dict[str, Feedback] = {}
        for _, entry in entries:
            feedback = Feedback(**orjson.loads(entry["feedback"]))
            if feedback.request_time >= moment:
                latest[feedback.request_id] = feedback
        return list(latest.values())

    async def aclose(self) -> None:
        await self._redis.aclose()
