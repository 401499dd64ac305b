"""Both upstream clients — our HTTP/1.1 one and httpx-aiohttp's behind `HttpxClient` —
fail with the same of our exceptions for the same event, so the forwarder decides on one
vocabulary: a connection refused, a connection closed, an answer cut short, a malformed
head, no answer in time, and the client leaving while its body is sent on."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import pytest

from memory_proxy.errors import (
    ClientDisconnected,
    ProxyError,
    UpstreamClosed,
    UpstreamConnectFailed,
    UpstreamProtocolError,
    UpstreamTimeout,
    caused_by,
)
from memory_proxy.forwarding.upstream import client_for
from tests.forwarding.raw_upstream import RawUpstream, read_request, unused_url

Reply = bytes | None  # what the upstream writes after reading the request; None: nothing


def replying(reply: Reply) -> RawUpstream:
    """An upstream that reads one request, writes `reply` and hangs up; None: it reads
    until the client hangs up, and never answers."""

    def handle(connection: socket.socket) -> None:
        if reply is None:
            while connection.recv(65536):
                pass
            return
        read_request(connection)
        connection.sendall(reply)

    return RawUpstream(handle)


async def send_and_read(
    url: str,
    kind: str,
    body: bytes | AsyncIterator[bytes] = b"{}",
    read_timeout: float | None = None,
) -> None:
    client = client_for(url, kind)
    try:
        answer = await client.send(
            "POST", b"/v1/chat/completions", [], body, read_timeout=read_timeout
        )
        try:
            async for _ in answer.body():
                pass
        finally:
            await answer.aclose()
    finally:
        await client.aclose()


def raised(exchange: Coroutine[Any, Any, None]) -> ProxyError:
    with pytest.raises(ProxyError) as info:
        asyncio.run(exchange)
    return info.value


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (b"", UpstreamClosed),  # closed before any byte of an answer
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial", UpstreamClosed),
        (b"HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok", UpstreamProtocolError),
    ],
    ids=["closed", "cut short", "malformed head"],
)
def test_an_upstream_failing_gives_the_same_error_through_either_client(
    upstream_kind: str, reply: bytes, error: type[ProxyError]
) -> None:
    upstream = replying(reply)
    try:
        assert type(raised(send_and_read(upstream.url, upstream_kind))) is error
    finally:
        upstream.close()


def test_a_refused_connection_says_so_in_its_cause(upstream_kind: str) -> None:
    """The forwarder sends a request again only when LiteLLM certainly never saw it."""
    error = raised(send_and_read(unused_url(), upstream_kind))
    assert isinstance(error, UpstreamConnectFailed)
    assert caused_by(error, ConnectionRefusedError)


def test_no_answer_head_in_time_is_a_timeout(upstream_kind: str) -> None:
    upstream = replying(None)
    try:
        waited = send_and_read(upstream.url, upstream_kind, read_timeout=0.05)
        assert type(raised(waited)) is UpstreamTimeout
    finally:
        upstream.close()


def test_a_client_leaving_mid_upload_is_told_apart_from_an_upstream_failure(
    upstream_kind: str,
) -> None:
    async def leaving() -> AsyncIterator[bytes]:
        yield b"{"
        raise ClientDisconnected

    upstream = replying(None)
    try:
        error = raised(send_and_read(upstream.url, upstream_kind, body=leaving()))
        assert type(error) is ClientDisconnected
    finally:
        upstream.close()
