"""Helpers of the lean HTTP/1.1 client's tests: a raw asyncio server whose every byte the
test writes, and one whole request through the client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from memory_proxy.forwarding.http1_client import Answer, HTTP1Client

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
    client: HTTP1Client,
    method: str,
    target: bytes = b"/",
    body: bytes | AsyncIterator[bytes] = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> tuple[Answer, bytes]:
    answer = await client.send(method, target, headers or [], body)
    received = b"".join([chunk async for chunk in answer.body()])
    await answer.aclose()
    return answer, received
