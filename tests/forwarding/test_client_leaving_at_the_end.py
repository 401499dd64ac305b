"""A client that hangs up as soon as it has read an answer's final event (Codex closes its
connection on `response.completed`) got the whole answer: the request is `complete`, not
`client_disconnected`, even when LiteLLM has not ended its stream yet."""

from __future__ import annotations

import json
import logging
import socket

import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.conftest import ProxyFactory
from tests.fake_upstream import FakeUpstream
from tests.support import log_fields, serve, wait_until

# path, request body, the stream's final marker as the client reads it, its finish reason
TERMINAL_MARKERS = [
    (
        "/v1/chat/completions",
        {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
        b"data: [DONE]",
        "stop",
    ),
    (
        "/v1/messages",
        {
            "model": "m",
            "stream": True,
            "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}],
        },
        b'data: {"type": "message_stop"}',
        "end_turn",
    ),
    (
        "/v1/responses",
        {"model": "m", "stream": True, "input": "hi"},
        b'"type": "response.completed"',
        "completed",
    ),
]


def holding(app: ASGIApp, before: bytes | None = None) -> ASGIApp:
    """The upstream keeps its stream open until the proxy hangs up: at its end (the widest
    window between the final event and the end of the stream), or `before` the first
    chunk that holds those bytes."""

    async def held(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_until_held(message: Message) -> None:
            if message["type"] == "http.response.body" and (
                before in message.get("body", b"") if before else not message.get("more_body")
            ):
                while (await receive())["type"] != "http.disconnect":
                    pass
            await send(message)

        await app(scope, receive, send_until_held)

    return held


def read_until_then_hang_up(url: str, path: str, body: dict[str, object], marker: bytes) -> bytes:
    """POST `body` as a client that closes its connection once `marker` arrived."""
    payload = json.dumps(body).encode()
    host, port = url.removeprefix("http://").split(":")
    received = b""
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"content-length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        while marker not in received:
            piece = connection.recv(65536)
            assert piece, f"the stream ended before {marker!r}: {received!r}"
            received += piece
    return received


@pytest.mark.parametrize(("path", "body", "marker", "reason"), TERMINAL_MARKERS)
def test_a_client_leaving_right_after_the_final_event_is_complete(
    run_proxy: ProxyFactory,
    caplog: pytest.LogCaptureFixture,
    path: str,
    body: dict[str, object],
    marker: bytes,
    reason: str,
) -> None:
    caplog.set_level(logging.INFO)
    with serve(holding(FakeUpstream())) as upstream, run_proxy(upstream) as proxy:
        read_until_then_hang_up(proxy, path, body, marker)
        wait_until(lambda: any(r.name == "memory_proxy.access" for r in caplog.records))
    (line,) = [log_fields(r) for r in caplog.records if r.name == "memory_proxy.access"]
    assert (line["outcome"], line["finish_reason"]) == ("complete", reason)


def test_a_client_leaving_before_the_final_event_is_still_disconnected(
    run_proxy: ProxyFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    path, body, _, _ = TERMINAL_MARKERS[2]
    held = holding(FakeUpstream(), before=b"response.completed")
    with serve(held) as upstream, run_proxy(upstream) as proxy:
        read_until_then_hang_up(proxy, path, body, b"response.output_item.done")
        wait_until(lambda: any(r.name == "memory_proxy.access" for r in caplog.records))
    (line,) = [log_fields(r) for r in caplog.records if r.name == "memory_proxy.access"]
    assert line["outcome"] == "client_disconnected"
