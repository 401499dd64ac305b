"""The lean HTTP/1.1 transport against real servers on loopback: uvicorn (the fake
upstream) for the ordinary cases, and a raw asyncio server where the test must control
every byte the server sends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from memory_proxy.http1_transport import HTTP1Transport
from tests.support import FakeUpstream, free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def raw_server(handler: Handler) -> tuple[asyncio.Server, str]:
    """A server whose every byte is written by the test."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + await reader.readexactly(length)


def replying_once(response: bytes) -> Handler:
    """A handler that reads one request, writes `response` and hangs up."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response)
        await writer.drain()
        writer.close()

    return answer


async def fetch(
    transport: HTTP1Transport, method: str, url: str, **options: object
) -> tuple[httpx.Response, bytes]:
    request = httpx.Request(method, url, **options)  # type: ignore[arg-type]
    response = await transport.handle_async_request(request)
    body = b"".join([chunk async for chunk in response.aiter_raw()])
    await response.aclose()
    return response, body


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
        transport = HTTP1Transport()
        bodies = [(await fetch(transport, "POST", url, content=b"{}"))[1] for _ in range(5)]
        await transport.aclose()
        server.close()
        return bodies

    assert asyncio.run(scenario()) == [b"ok"] * 5
    assert len(connections) == 1


def test_a_streamed_body_is_sent_chunked_and_arrives_whole(
    fake_upstream: tuple[FakeUpstream, str],
) -> None:
    upstream, url = fake_upstream

    async def pieces() -> AsyncIterator[bytes]:
        for piece in (b"a" * 10, b"", b"b" * 70_000, b"c"):
            yield piece

    async def scenario() -> dict[str, object]:
        transport = HTTP1Transport()
        _, body = await fetch(transport, "PUT", f"{url}/echo", content=pieces())
        await transport.aclose()
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

    async def scenario() -> tuple[httpx.Response, bytes, httpx.Response, bytes]:
        server, url = await raw_server(answer)
        transport = HTTP1Transport()
        created, created_body = await fetch(transport, "POST", url, content=b"x")
        head, head_body = await asyncio.wait_for(fetch(transport, "HEAD", url), 5)
        await transport.aclose()
        server.close()
        return created, created_body, head, head_body

    created, created_body, head, head_body = asyncio.run(scenario())
    assert (created.status_code, created.headers["x-real"], created_body) == (201, "yes", b"done")
    assert (head.status_code, head_body) == (200, b"")


def test_an_answer_without_a_length_ends_when_the_connection_closes() -> None:
    answer = replying_once(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")

    async def scenario() -> bytes:
        server, url = await raw_server(answer)
        transport = HTTP1Transport()
        _, body = await fetch(transport, "POST", url, content=b"{}")
        await transport.aclose()
        server.close()
        return body

    assert asyncio.run(scenario()) == b"until the end"


def test_an_answer_cut_short_raises_and_a_refusal_says_so() -> None:
    answer = replying_once(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")

    async def scenario() -> None:
        server, url = await raw_server(answer)
        transport = HTTP1Transport()
        with pytest.raises(httpx.ReadError):
            await fetch(transport, "POST", url, content=b"{}")
        with pytest.raises(httpx.ConnectError) as refused:
            await fetch(transport, "GET", f"http://127.0.0.1:{free_port()}/")
        assert isinstance(refused.value.__cause__, ConnectionRefusedError)
        await transport.aclose()
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
        transport = HTTP1Transport()
        request = httpx.Request("POST", url, content=b"{}")
        response = await transport.handle_async_request(request)
        received = bytearray()
        most_buffered = 0
        async for chunk in response.aiter_raw():
            received += chunk
            most_buffered = max(most_buffered, response.stream._connection._buffered)  # type: ignore[attr-defined]
            await asyncio.sleep(0)  # a slow client
        await response.aclose()
        await transport.aclose()
        server.close()
        return bytes(received), most_buffered

    received, most_buffered = asyncio.run(scenario())
    assert len(received) == size
    assert received[::65536] == bytes(i % 256 for i in range(size // 65536))
    assert most_buffered < size // 2  # reading paused instead of holding it all
