"""No header holding CR, LF or NUL leaves for LiteLLM, whatever put it there: the upstream
clients refuse the request unsent, and the forwarder answers 400 in the client's format."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.types import Message

from memory_proxy.errors import UpstreamConnectFailed
from memory_proxy.forwarding.forwarder import Forwarder
from memory_proxy.forwarding.header_safety import UnsafeHeader, check_headers
from memory_proxy.forwarding.http1_client import HTTP1Client
from memory_proxy.forwarding.upstream import UpstreamMonitor, client_for
from tests.fake_upstream import FakeUpstream
from tests.forwarding.raw_upstream import unused_url

FORBIDDEN = set(b"\r\n\0")
header_bytes = st.binary(max_size=30) | st.sampled_from([b"a\r\nx-injected: 1", b"\n", b"a\0"])
header_lists = st.lists(st.tuples(header_bytes.filter(bool), header_bytes), max_size=6)


def holds_forbidden(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(FORBIDDEN & set(name + value) for name, value in headers)


@given(header_lists)
def test_check_headers_refuses_exactly_the_headers_holding_cr_lf_or_nul(
    headers: list[tuple[bytes, bytes]],
) -> None:
    if holds_forbidden(headers):
        with pytest.raises(UnsafeHeader):
            check_headers(headers)
    else:
        check_headers(headers)


@given(header_lists, st.sampled_from([b"/v1/chat/completions", b"/a\r\nb", b"/a\0"]))
def test_the_lean_client_refuses_an_unsafe_head_before_connecting(
    headers: list[tuple[bytes, bytes]], target: bytes
) -> None:
    """Nothing listens at the URL: a request the client would send fails to connect; an
    unsafe one is refused before it tries."""
    client = HTTP1Client(unused_url())
    unsafe = holds_forbidden(headers) or not set(target).isdisjoint(FORBIDDEN)
    with pytest.raises(UnsafeHeader if unsafe else UpstreamConnectFailed):
        asyncio.run(client.send("POST", target, headers, b"{}"))


@pytest.mark.parametrize("value", [b"s3cret\r\nx-injected: 1", b"s3cret\n", b"s3cret\0"])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
def test_the_forwarder_answers_400_and_sends_nothing_upstream(
    fake_upstream: tuple[FakeUpstream, str],
    upstream_kind: str,
    value: bytes,
    path: str,
) -> None:
    upstream, url = fake_upstream
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [],
    }

    async def scenario() -> list[Message]:
        client = client_for(url, upstream_kind)
        monitor = UpstreamMonitor(client, url)
        forwarder = Forwarder(
            client, url, monitor, wait_seconds=1, first_byte_timeout=10, idle_timeout=10
        )
        sent: list[Message] = []

        async def receive() -> Message:
            await asyncio.Event().wait()  # the client stays
            raise AssertionError("unreachable")

        async def send(message: Message) -> None:
            sent.append(message)

        headers = [(b"content-type", b"application/json"), (b"x-sm-conversation-id", value)]
        result = await forwarder.forward(scope, receive, send, headers=headers, body=b"{}")
        assert (result.status, result.outcome) == (400, "refused")
        assert monitor.is_ready  # a refused request says nothing about LiteLLM
        await client.aclose()
        return sent

    start, body = asyncio.run(scenario())
    assert start["status"] == 400
    assert (b"retry-after", b"5") not in start["headers"]
    error = json.loads(body["body"])
    assert error["error"]["type"] == "invalid_request_error"
    assert ("type" in error) == (path == "/v1/messages")  # Anthropic's shape there
    assert "x-sm-conversation-id" in json.dumps(error)
    assert "s3cret" not in json.dumps(error)  # the value itself is not echoed
    assert upstream.requests == []
