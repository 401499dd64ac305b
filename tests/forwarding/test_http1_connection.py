"""One exchange of the lean HTTP/1.1 client on the wire: the request head and framing, the
answer's framing (interim answers, no length, cut short, oversized head), a slow answer
head and a slow reader; against uvicorn (the fake upstream) and raw asyncio servers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from memory_proxy.errors import (
    UpstreamClosed,
    UpstreamConnectFailed,
    UpstreamProtocolError,
    UpstreamTimeout,
)
from memory_proxy.forwarding.http1_client import Answer, HTTP1Client
from memory_proxy.forwarding.http1_connection import MAX_ANSWER_HEAD_BYTES
from tests.fake_upstream import FakeUpstream
from tests.forwarding.http1_support import fetch, raw_server, read_request, replying_once
from tests.support import free_port


def test_a_streamed_body_is_sent_chunked_and_arrives_whole(
    fake_upstream: tuple[FakeUpstream, str],
) -> None:
    upstream, url = fake_upstream

    async def pieces() -> AsyncIterator[bytes]:
        for piece in (b"a" * 10, b"", b"b" * 70_000, b"c"):
            yield piece

    async def scenario() -> dict[str, object]:
        client = HTTP1Client(url)
        _, body = await fetch(client, "PUT", b"/echo", pieces())
        await client.aclose()
        return dict(json.loads(body))

    echo = asyncio.run(scenario())
    assert echo["body_length"] == 70_011
    assert upstream.requests[0].body == b"a" * 10 + b"b" * 70_000 + b"c"


def test_interim_answers_are_skipped_and_head_has_no_body() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(2):  # the POST, then the HEAD on the same connection
            request = await read_request(reader)
            if request.startswith(b"HEAD"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                writer.write(
                    b"HTTP/1.1 201 Created\r\nX-Real: yes\r\nContent-Length: 4\r\n\r\ndone"
                )
            await writer.drain()

    async def scenario() -> tuple[Answer, bytes, Answer, bytes]:
        server, url = await raw_server(answer)
        client = HTTP1Client(url)
        created, created_body = await fetch(client, "POST", body=b"x")
        head, head_body = await asyncio.wait_for(fetch(client, "HEAD"), 5)
        await client.aclose()
        server.close()
        return created, created_body, head, head_body

    created, created_body, head, head_body = asyncio.run(scenario())
    assert (created.status, created.headers, created_body) == (
        201,
        [(b"x-real", b"yes"), (b"content-length", b"4")],  # names in lower case
        b"done",
    )
    assert (head.status, head_body) == (200, b"")


def test_the_request_head_names_the_host_the_base_path_and_the_framing() -> None:
    heads: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while not reader.at_eof():
            try:
                heads.append(await read_request(reader))
            except asyncio.IncompleteReadError:
                break
            writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            await writer.drain()

    async def scenario() -> None:
        server, url = await raw_server(answer)
        client = HTTP1Client(url + "/litellm/")
        await fetch(client, "GET", b"/health?x=1", headers=[(b"x-request-id", b"r1")])
        await fetch(client, "POST", b"/v1/chat/completions", b'{"a": 1}')
        await client.aclose()
        server.close()

    asyncio.run(scenario())
    host = heads[0].split(b"\r\n")[1]
    assert host.startswith(b"host: 127.0.0.1:")
    assert heads[0] == b"GET /litellm/health?x=1 HTTP/1.1\r\n%b\r\nx-request-id: r1\r\n\r\n" % host
    assert heads[1] == (
        b"POST /litellm/v1/chat/completions HTTP/1.1\r\n%b\r\ncontent-length: 8\r\n\r\n"
        b'{"a": 1}' % host
    )


def test_a_slow_answer_head_times_out_and_the_connection_is_not_reused() -> None:
    silent = asyncio.Event()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await silent.wait()
        writer.close()

    async def scenario() -> None:
        server, url = await raw_server(answer)
        client = HTTP1Client(url)
        with pytest.raises(UpstreamTimeout):
            await client.send("GET", b"/", [], b"", read_timeout=0.05)
        assert not client._idle
        silent.set()
        await client.aclose()
        server.close()

    asyncio.run(scenario())


def test_an_answer_without_a_length_ends_when_the_connection_closes() -> None:
    answer = replying_once(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")

    async def scenario() -> bytes:
        server, url = await raw_server(answer)
        client = HTTP1Client(url)
        _, body = await fetch(client, "POST", body=b"{}")
        await client.aclose()
        server.close()
        return body

    assert asyncio.run(scenario()) == b"until the end"


def test_an_answer_cut_short_raises_and_a_refusal_says_so() -> None:
    answer = replying_once(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")

    async def scenario() -> None:
        server, url = await raw_server(answer)
        client = HTTP1Client(url)
        with pytest.raises(UpstreamClosed):
            await fetch(client, "POST", body=b"{}")
        with pytest.raises(UpstreamConnectFailed) as refused:
            await fetch(HTTP1Client(f"http://127.0.0.1:{free_port()}"), "GET")
        assert isinstance(refused.value.__cause__, ConnectionRefusedError)
        await client.aclose()
        server.close()

    asyncio.run(scenario())


def test_a_slow_reader_pauses_the_socket_and_loses_nothing() -> None:
    size = 8 * 1024 * 1024

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        for index in range(size // 65536):
            writer.write(bytes([index % 256]) * 65536)
            await writer.drain()

    async def scenario() -> tuple[bytes, int]:
        server, url = await raw_server(answer)
        client = HTTP1Client(url)
        streamed = await client.send("POST", b"/", [], b"{}")
        received = bytearray()
        most_buffered = 0
        async for chunk in streamed.body():
            received += chunk
            most_buffered = max(most_buffered, streamed._connection._buffered)
            await asyncio.sleep(0)  # a slow client
        await streamed.aclose()
        await client.aclose()
        server.close()
        return bytes(received), most_buffered

    received, most_buffered = asyncio.run(scenario())
    assert len(received) == size
    assert received[::65536] == bytes(i % 256 for i in range(size // 65536))
    assert most_buffered < size // 2  # reading paused instead of holding it all


def test_an_oversized_answer_head_is_refused() -> None:
    heads = {
        "one huge header": b"X-Big: " + b"a" * (MAX_ANSWER_HEAD_BYTES + 1) + b"\r\n",
        "many headers": b"".join(b"X-H%d: %b\r\n" % (i, b"v" * 100) for i in range(1000)),
    }

    async def scenario(headers: bytes) -> None:
        server, url = await raw_server(
            replying_once(b"HTTP/1.1 200 OK\r\n%bContent-Length: 2\r\n\r\nok" % headers)
        )
        client = HTTP1Client(url)
        with pytest.raises(UpstreamProtocolError, match="head"):
            await fetch(client, "GET")
        assert not client._idle
        await client.aclose()
        server.close()

    for headers in heads.values():
        asyncio.run(scenario(headers))
