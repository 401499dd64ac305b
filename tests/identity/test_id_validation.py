"""Ids from headers and bodies end up in memory keys and in headers toward LiteLLM: each is
refused with a 400 in the client's format or is a whole valid id, never one with a line
break. Driven in process through the ASGI app, since a real HTTP parser would not let a
line break through a header; the upstream is a real server on loopback."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from starlette.types import Message, Scope

from memory_proxy.app import MemoryProxy
from memory_proxy.config import MemorySettings, Settings, UsageSettings
from memory_proxy.identity.client_detection import VALID_ID
from tests.fake_upstream import FakeUpstream
from tests.support import lifespan
from tests.test_app import ROUTED, SM_KEY


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
@pytest.mark.parametrize(
    ("where", "bad"),
    [("body", "abc\n"), ("body", "abc\r\nx-evil: 1"), ("body", "a\x00b"), ("header", "abc\n")],
)
def test_an_id_with_a_line_break_is_refused_not_written_into_a_header(
    fake_upstream: tuple[FakeUpstream, str], path: str, where: str, bad: str
) -> None:
    upstream, url = fake_upstream
    app = MemoryProxy(Settings(litellm_url=url, litellm=ROUTED, supermemory_api_key=SM_KEY))
    body = {"model": "sm-model", "messages": [], "metadata": {"session_id": "ok"}}
    headers = [(b"content-type", b"application/json")]
    if where == "body":
        body["metadata"] = {"session_id": bad}
    else:
        headers.append((b"x-memory-user-id", bad.encode()))
    status, answer = asyncio.run(_call(app, path, headers, orjson.dumps(body)))
    assert status == 400
    assert _in_clients_format(path, answer)
    assert upstream.requests == []


async def _call(
    app: MemoryProxy, path: str, headers: list[tuple[bytes, bytes]], body: bytes
) -> tuple[int, bytes]:
    """One POST through the ASGI app with exactly these header bytes, lifespan included."""
    async with lifespan(app):
        return await _post(app, path, headers, body)


async def _post(
    app: MemoryProxy, path: str, headers: list[tuple[bytes, bytes]], body: bytes
) -> tuple[int, bytes]:
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8764),
    }
    messages: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]
    status = 0
    chunks: list[bytes] = []

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


def _in_clients_format(path: str, answer: bytes) -> bool:
    error = orjson.loads(answer)
    kind: str = error["error"]["type"]
    if path == "/v1/messages":
        return error["type"] == "error" and kind == "invalid_request_error"
    return kind == "invalid_request_error"


_ID_HEADERS = (b"x-memory-user-id", b"x-session-id", b"x-sm-conversation-id", b"x-request-id")
_TRICKY = st.sampled_from(
    [b"abc\n", b"abc\r\n", b"a\rb", b"a\x00", b"ok", b"ok-1.2:3@4+5_6", b"\n", b" x ", b"k" * 129]
)


def test_any_id_is_refused_in_the_clients_format_or_reaches_litellm_clean(
    fake_upstream: tuple[FakeUpstream, str],
) -> None:
    """Property: whatever bytes the id headers and metadata.session_id carry, the request is
    refused with a 400 in the client's format, or every header LiteLLM gets is free of
    CR, LF and NUL and the ids the proxy writes are valid ids."""
    upstream, url = fake_upstream
    settings = Settings(
        litellm_url=url,
        litellm=ROUTED,
        supermemory_api_key=SM_KEY,
        memory=MemorySettings(enabled=False),
        usage=UsageSettings(enabled=False),
    )
    app = MemoryProxy(settings)
    loop = asyncio.new_event_loop()
    running = lifespan(app)
    loop.run_until_complete(running.__aenter__())

    @hsettings(max_examples=300, deadline=None)
    @given(
        path=st.sampled_from(["/v1/chat/completions", "/v1/messages"]),
        values=st.fixed_dictionaries(
            {}, optional={name: st.one_of(_TRICKY, st.binary(max_size=12)) for name in _ID_HEADERS}
        ),
        session_in_body=st.none() | st.text(max_size=12) | st.sampled_from(["s\n", "s\r", "s\x00"]),
    )
    def check(path: str, values: dict[bytes, bytes], session_in_body: str | None) -> None:
        upstream.requests.clear()
        body: dict[str, object] = {"model": "sm-model", "messages": []}
        if session_in_body is not None:
            body["metadata"] = {"session_id": session_in_body}
        headers = [(b"content-type", b"application/json"), *values.items()]
        status, answer = loop.run_until_complete(_post(app, path, headers, orjson.dumps(body)))
        if status == 400:
            assert _in_clients_format(path, answer)
            assert upstream.requests == []
            return
        assert status == 200
        (received,) = upstream.requests
        for value in received.headers.values():
            assert not {"\r", "\n", "\x00"} & set(value)
        for name in ("x-sm-user-id", "x-sm-conversation-id", "x-request-id"):
            if name in received.headers:
                assert VALID_ID.fullmatch(received.headers[name])

    try:
        check()
    finally:
        loop.run_until_complete(running.__aexit__(None, None, None))
        loop.close()
