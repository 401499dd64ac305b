"""The lean HTTP/1.1 client's pool against real servers on loopback: connections kept
alive and reused, and after any way an exchange ends (read whole, abandoned, failed,
cancelled, timed out) the next request on the connection gets exactly its own answer;
idle, closed and stale connections leave the pool."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memory_proxy.errors import (
    StaleConnection,
    UpstreamError,
)
from memory_proxy.forwarding.http1_client import HTTP1Client
from tests.forwarding.http1_support import fetch, raw_server, read_request, replying_once
from tests.support import eventually


def test_keep_alive_connections_are_reused() -> None:
    connections: list[None] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(None)
        while not reader.at_eof():
            try:
                await read_request(reader)
            except asyncio.IncompleteReadError:
                break
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
        writer.close()

    async def scenario() -> list[bytes]:
        server, url = await raw_server(answer)
        client = HTTP1Client(url)
        bodies = [(await fetch(client, "POST", body=b"{}"))[1] for _ in range(5)]
        await client.aclose()
        server.close()
        return bodies

    assert asyncio.run(scenario()) == [b"ok"] * 5
    assert len(connections) == 1


# The pool, outcome by outcome (after httpcore's tests/_async/test_connection_pool.py):
# whatever became of one answer, the next request on the same pool gets exactly its own.

SECOND_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond"


class ScriptedUpstream:
    """Answers the first request it sees with `first` (then hangs up when `close_after`),
    every later one with SECOND_ANSWER, on as many keep-alive connections as it is given."""

    def __init__(self, first: bytes, *, close_after: bool, cuts: tuple[int, ...] = ()) -> None:
        self.first = first
        self.close_after = close_after
        self.cuts = cuts  # where `first` is split into separate writes
        self.connections = 0
        self.requests = 0
        self.got_first = asyncio.Event()

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        while True:
            try:
                await read_request(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            self.requests += 1
            if self.requests > 1:
                writer.write(SECOND_ANSWER)
            else:
                self.got_first.set()
                for start, end in itertools.pairwise((0, *sorted(self.cuts), None)):
                    writer.write(self.first[start:end])
                    await writer.drain()
                    await asyncio.sleep(0)  # the client may read between the writes
                if self.close_after:
                    await writer.drain()
                    break
            await writer.drain()
        writer.close()


Consume = Callable[[HTTP1Client, ScriptedUpstream], Awaitable[bytes | None]]


async def read_all(client: HTTP1Client, upstream: ScriptedUpstream) -> bytes | None:
    return (await fetch(client, "POST", body=b"{}"))[1]


async def read_head_only(client: HTTP1Client, upstream: ScriptedUpstream) -> bytes | None:
    return (await fetch(client, "HEAD"))[1]


async def read_one_chunk(client: HTTP1Client, upstream: ScriptedUpstream) -> bytes | None:
    """A caller that leaves after the first chunk (its client hung up)."""
    answer = await client.send("POST", b"/", [], b"{}")
    chunk = await anext(aiter(answer.body()))
    await answer.aclose()
    return chunk


async def read_nothing(client: HTTP1Client, upstream: ScriptedUpstream) -> bytes | None:
    answer = await client.send("POST", b"/", [], b"{}")
    await answer.aclose()
    return None


async def fail_reading(client: HTTP1Client, upstream: ScriptedUpstream) -> bytes | None:
    with pytest.raises(UpstreamError):
        await fetch(client, "POST", body=b"{}")
    return None


async def cancel_before_the_head(client: HTTP1Client, upstream: ScriptedUpstream) -> bytes | None:
    request = asyncio.ensure_future(fetch(client, "POST", body=b"{}"))
    await upstream.got_first.wait()
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    return None


@dataclass(frozen=True)
class Outcome:
    first: bytes  # the upstream's bytes for the first request
    consume: Consume  # what the first caller does with them
    received: bytes | None  # what it must get (None: nothing whole)
    reused: bool  # whether the second request may use the same connection
    close_after: bool = False  # the upstream hangs up after `first`


CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
HELLO = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
OUTCOMES = {
    "complete": Outcome(HELLO, read_all, b"hello", reused=True),
    "interim 1xx, then complete": Outcome(
        b"HTTP/1.1 100 Continue\r\n\r\n" + HELLO, read_all, b"hello", reused=True
    ),
    "HEAD": Outcome(
        b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", read_head_only, b"", reused=False
    ),
    "client gone mid-body, answer all received": Outcome(
        CHUNKED_HEAD + b"5\r\nfirst\r\n4\r\nrest\r\n0\r\n\r\n",
        read_one_chunk,
        b"first",
        reused=False,
    ),
    "client gone before the body": Outcome(
        CHUNKED_HEAD + b"5\r\nfirst\r\n0\r\n\r\n", read_nothing, None, reused=False
    ),
    "upstream closed mid-body": Outcome(
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial",
        fail_reading,
        None,
        reused=False,
        close_after=True,
    ),
    "not HTTP": Outcome(b"Wait, this isn't valid HTTP!\r\n\r\n", fail_reading, None, False),
    "more than the answer": Outcome(
        HELLO + b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra",
        read_all,
        b"hello",
        reused=False,
    ),
    "Connection: close": Outcome(
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello",
        read_all,
        b"hello",
        reused=False,
        close_after=True,
    ),
    "ended by the close": Outcome(
        b"HTTP/1.1 200 OK\r\n\r\nuntil the end",
        read_all,
        b"until the end",
        reused=False,
        close_after=True,
    ),
    "cancelled before the head": Outcome(b"", cancel_before_the_head, None, reused=False),
}


@pytest.mark.parametrize("outcome", OUTCOMES.values(), ids=OUTCOMES)
def test_after_any_outcome_the_next_request_gets_exactly_its_own_answer(outcome: Outcome) -> None:
    upstream = ScriptedUpstream(outcome.first, close_after=outcome.close_after)

    async def scenario() -> tuple[bytes | None, bytes]:
        server, url = await raw_server(upstream)
        client = HTTP1Client(url)
        first = await outcome.consume(client, upstream)
        _, second = await asyncio.wait_for(fetch(client, "POST", body=b"{}"), 5)
        await client.aclose()
        server.close()
        return first, second

    assert asyncio.run(scenario()) == (outcome.received, b"second")
    assert upstream.connections == (1 if outcome.reused else 2)


@settings(max_examples=40, deadline=None)
@given(
    pieces=st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=8),
    cuts=st.lists(st.integers(min_value=1, max_value=300), max_size=6),
    wanted=st.integers(min_value=0, max_value=9),
)
def test_wherever_a_caller_stops_reading_the_next_one_gets_only_its_own_answer(
    pieces: list[bytes], cuts: list[int], wanted: int
) -> None:
    """A chunked answer, written in arbitrary pieces; its caller reads `wanted` chunks and
    leaves. Its connection is reused only when it read to the end."""
    body = b"".join(pieces)
    first = CHUNKED_HEAD + b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in pieces)
    upstream = ScriptedUpstream(first + b"0\r\n\r\n", close_after=False, cuts=tuple(cuts))

    async def scenario() -> tuple[bytes, bool, bytes]:
        server, url = await raw_server(upstream)
        client = HTTP1Client(url)
        answer = await client.send("POST", b"/", [], b"{}")
        received, chunks = b"", aiter(answer.body())
        finished = False
        for _ in range(wanted):
            try:
                received += await anext(chunks)
            except StopAsyncIteration:
                finished = True
                break
        await answer.aclose()
        _, second = await asyncio.wait_for(fetch(client, "POST", body=b"{}"), 5)
        await client.aclose()
        server.close()
        return received, finished, second

    received, finished, second = asyncio.run(scenario())
    assert body.startswith(received)
    assert second == b"second"
    assert upstream.connections == (1 if finished else 2)


def test_idle_connections_are_closed_after_the_keep_alive_time() -> None:
    closed = asyncio.Event()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        assert await reader.read() == b""  # until the client closes its end
        closed.set()

    async def scenario() -> None:
        server, url = await raw_server(answer)
        client = HTTP1Client(url, keepalive_seconds=0.05)
        await fetch(client, "GET")
        await asyncio.wait_for(closed.wait(), 5)  # reaped with no further request
        assert not client._idle
        await client.aclose()
        server.close()

    asyncio.run(scenario())


def test_a_pooled_connection_the_upstream_closed_leaves_the_pool() -> None:
    async def scenario() -> None:
        server, url = await raw_server(
            replying_once(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        )
        client = HTTP1Client(url)
        await fetch(client, "GET")
        await eventually(lambda: not client._idle)
        await client.aclose()
        server.close()

    asyncio.run(scenario())


def test_a_reused_connection_closed_before_any_answer_byte_is_said_to_be_stale() -> None:
    """Only then was the request certainly not processed: the forwarder may send it again.
    A fresh connection closed the same way says nothing of the kind."""

    answered: list[None] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """The very first request is answered; every later one meets a hang-up."""
        while not answered:
            await read_request(reader)
            answered.append(None)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
        await read_request(reader)
        writer.close()

    async def scenario() -> tuple[BaseException, BaseException]:
        server, url = await raw_server(answer)
        client = HTTP1Client(url)
        await fetch(client, "POST", body=b"{}")
        with pytest.raises(UpstreamError) as reused:
            await fetch(client, "POST", body=b"{}")
        with pytest.raises(UpstreamError) as fresh:
            await fetch(HTTP1Client(url), "POST", body=b"{}")
        await client.aclose()
        server.close()
        return reused.value, fresh.value

    reused, fresh = asyncio.run(scenario())
    assert isinstance(reused, StaleConnection)
    assert not isinstance(fresh, StaleConnection)
