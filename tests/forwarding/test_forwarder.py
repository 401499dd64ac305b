"""The proxy in front of a fake upstream, both real uvicorn servers on loopback."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
from httpx_aiohttp import AiohttpTransport
from starlette.types import Message, Send

from memory_proxy.app import MemoryProxy
from memory_proxy.config import Settings
from memory_proxy.forwarding.forwarder import Forwarder, relayed_headers
from memory_proxy.forwarding.http1_client import HTTP1Client
from memory_proxy.forwarding.upstream import HttpxClient, UpstreamMonitor, client_for
from tests.conftest import ProxyFactory
from tests.fake_upstream import FakeUpstream
from tests.forwarding.raw_upstream import RawUpstream, read_request, unused_url
from tests.support import free_port, log_fields, serve, wait_until

SCOPE = {
    "type": "http",
    "method": "POST",
    "path": "/v1/chat/completions",
    "raw_path": b"/v1/chat/completions",
    "query_string": b"",
    "headers": [],
}


def test_hop_by_hop_cors_and_headers_named_by_connection_are_not_relayed() -> None:
    headers = [
        (b"connection", b"keep-alive, X-Private"),
        (b"keep-alive", b"timeout=5"),
        (b"transfer-encoding", b"chunked"),
        (b"x-private", b"1"),
        (b"access-control-allow-origin", b"*"),
        (b"accept-encoding", b"gzip"),
        (b"x-other", b"2"),
        (b"x-request-id", b"litellm's"),
    ]
    assert relayed_headers(headers, [(b"x-request-id", b"ours")]) == [
        (b"accept-encoding", b"gzip"),
        (b"x-other", b"2"),
        (b"x-request-id", b"ours"),
    ]


def test_sse_events_arrive_before_the_upstream_sends_the_next(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    upstream, upstream_url = fake_upstream
    with (
        run_proxy(upstream_url) as proxy,
        httpx.stream("GET", f"{proxy}/stream?events=3", timeout=10) as response,
    ):
        chunks = response.iter_raw()
        # The upstream holds event-1 back until released: event-0 must already be here.
        assert next(chunks) == b"data: event-0\n\n"
        assert not upstream.release.is_set()
        upstream.release.set()
        assert b"".join(chunks) == b"data: event-1\n\ndata: event-2\n\n"
    assert response.headers["content-type"] == "text/event-stream"


def test_client_disconnect_closes_the_upstream_connection(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    upstream, upstream_url = fake_upstream
    with run_proxy(upstream_url) as proxy:
        with httpx.stream("GET", f"{proxy}/endless", timeout=10) as response:
            assert next(response.iter_raw()) == b"first"
        assert upstream.saw_disconnect.wait(timeout=5)


def test_one_upstream_request_per_client_request_with_query_and_method(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    upstream, upstream_url = fake_upstream
    with run_proxy(upstream_url) as proxy:
        response = httpx.request("PATCH", f"{proxy}/v1/things/7?a=1&b=%20x", content=b"hi")
    assert response.status_code == 200
    echo = response.json()
    assert (echo["method"], echo["path"], echo["query"]) == ("PATCH", "/v1/things/7", "a=1&b=%20x")
    assert len(upstream.requests) == 1
    assert upstream.requests[0].body == b"hi"


@pytest.mark.parametrize("content_type", ["application/json", "application/octet-stream"])
def test_large_bodies_pass_through_unchanged(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory, content_type: str
) -> None:
    upstream, upstream_url = fake_upstream
    body = b'{"model": "x", "pad": "' + b"a" * 5_000_000 + b'"}'
    with run_proxy(upstream_url) as proxy:
        response = httpx.post(
            f"{proxy}/v1/upload", content=body, headers={"content-type": content_type}, timeout=30
        )
    assert response.json()["body_length"] == len(body)
    assert upstream.requests[0].body == body


def test_chunked_request_bodies_are_streamed(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    upstream, upstream_url = fake_upstream

    def parts() -> Iterator[bytes]:
        yield b"part-1,"
        yield b"part-2"

    with run_proxy(upstream_url) as proxy:
        response = httpx.post(f"{proxy}/v1/files", content=parts())
    assert response.status_code == 200
    assert upstream.requests[0].body == b"part-1,part-2"


def test_headers_in_and_out(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    upstream, upstream_url = fake_upstream
    with run_proxy(upstream_url) as proxy:
        response = httpx.get(
            f"{proxy}/v1/models",
            headers={
                "accept-encoding": "identity",
                "x-custom": "kept",
                "connection": "keep-alive, x-hop",
                "x-hop": "dropped",
                "x-request-id": "req-123",
            },
        )
    received = upstream.requests[0].headers
    assert received["accept-encoding"] == "identity"
    assert received["x-custom"] == "kept"
    assert "x-hop" not in received
    assert received["x-request-id"] == "req-123"
    assert received["host"] == upstream_url.removeprefix("http://")
    assert "user-agent" in received  # httpx's, passed through as the client sent it
    assert "python-httpx" in received["user-agent"]
    assert response.headers["x-upstream"] == "fake"


def test_a_request_id_is_created_when_missing(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    upstream, upstream_url = fake_upstream
    with run_proxy(upstream_url) as proxy:
        httpx.get(f"{proxy}/v1/models", headers={"x-request-id": "bad id with spaces"})
    assert len(upstream.requests[0].headers["x-request-id"]) == 32


@pytest.mark.parametrize(
    ("path", "shape"),
    [("/v1/chat/completions", "openai"), ("/v1/messages", "anthropic")],
)
def test_upstream_down_gives_503_in_the_clients_error_shape(
    run_proxy: ProxyFactory, path: str, shape: str
) -> None:
    with run_proxy(unused_url(), upstream_wait_seconds=0.2) as proxy:
        response = httpx.post(f"{proxy}{path}", json={"model": "demo", "messages": []})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    error = response.json()
    if shape == "anthropic":
        assert error["type"] == "error"
        assert error["error"]["type"] == "overloaded_error"
    else:
        assert error["error"]["type"] == "service_unavailable"
        assert "not available" in error["error"]["message"]


def test_a_request_waits_for_an_upstream_that_comes_up(
    fake_upstream: tuple[FakeUpstream, str],
) -> None:
    """Refused at first, the request waits and is delivered once LiteLLM answers."""
    upstream, _ = fake_upstream
    port = free_port()
    settings = Settings(litellm_url=f"http://127.0.0.1:{port}", upstream_wait_seconds=20)
    app = MemoryProxy(settings)
    result: dict[str, httpx.Response] = {}
    with serve(app) as proxy:
        sender = threading.Thread(
            target=lambda: result.update(
                response=httpx.post(
                    f"{proxy}/v1/chat/completions", json={"model": "demo"}, timeout=30
                )
            )
        )
        sender.start()
        wait_until(lambda: not app.monitor.is_ready)  # the request was refused and now waits
        with serve(upstream, port=port):
            sender.join(timeout=25)
    assert result["response"].status_code == 200
    delivered = [r for r in upstream.requests if r.path == "/v1/chat/completions"]
    assert len(delivered) == 1


class HangUpServer:
    """Accepts connections, reads the request, and closes without answering."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.request_lines: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with connection:
                self.request_lines.append(connection.recv(65536).split(b"\r\n")[0].decode())


def test_an_upstream_that_hangs_up_gives_502_and_llm_calls_are_not_repeated(
    run_proxy: ProxyFactory,
) -> None:
    upstream = HangUpServer()
    try:
        with run_proxy(upstream.url, upstream_wait_seconds=5) as proxy:
            response = httpx.post(f"{proxy}/v1/chat/completions", json={"model": "m"})
    finally:
        upstream.listener.close()
    assert response.status_code == 502
    assert "LiteLLM failed to answer" in response.json()["error"]["message"]
    calls = [line for line in upstream.request_lines if "/v1/chat/completions" in line]
    assert len(calls) == 1


def test_a_client_leaving_during_its_upload_ends_the_request_quietly(
    fake_upstream: tuple[FakeUpstream, str],
    run_proxy: ProxyFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, url = fake_upstream
    caplog.set_level(logging.INFO)
    with run_proxy(url) as proxy:
        port = int(proxy.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as conn:
            head = b"PUT /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n"
            conn.sendall(head + b"x" * 1000)
        wait_until(lambda: any(r.name == "memory_proxy.access" for r in caplog.records))
        assert httpx.get(f"{proxy}/v1/models").status_code == 200
    (line, *_) = [r for r in caplog.records if r.name == "memory_proxy.access"]
    assert log_fields(line)["outcome"] == "client_disconnected"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_plain_http_gets_the_lean_client_and_https_aiohttps() -> None:
    assert isinstance(client_for("http://127.0.0.1:8765"), HTTP1Client)
    https = client_for("https://litellm.example")
    assert isinstance(https, HttpxClient) and isinstance(https.transport, AiohttpTransport)


def recording() -> tuple[list[Message], Send]:
    """An ASGI `send` that keeps what it is given."""
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    return sent, send


def test_a_client_hanging_up_on_a_stalled_answer_leaves_nothing_for_the_next_caller(
    upstream_kind: str,
) -> None:
    """LiteLLM sent the whole answer, the client stalled after its first chunk (a slow
    reader) and hung up: the rest must not reach the next request on the pool."""
    answers = iter(
        [
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
            b"d\r\ndata: first\n\n\r\nd\r\ndata: rest1\n\n\r\nd\r\ndata: rest2\n\n\r\n0\r\n\r\n",
            *[b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond"] * 3,
        ]
    )

    def keep_alive(connection: socket.socket) -> None:
        while read_request(connection):
            connection.sendall(next(answers))

    upstream = RawUpstream(keep_alive)

    async def scenario() -> list[bytes]:
        client = client_for(upstream.url, upstream_kind)
        forwarder = Forwarder(
            client,
            upstream.url,
            UpstreamMonitor(client, upstream.url),
            wait_seconds=1,
            first_byte_timeout=10,
            idle_timeout=10,
        )
        hung_up = asyncio.Event()
        stalled = asyncio.Event()

        async def slow_client_receive() -> Message:
            await hung_up.wait()
            return {"type": "http.disconnect"}

        async def slow_client_send(message: Message) -> None:
            if message.get("body"):  # takes the first chunk, then stalls for good
                stalled.set()
                await asyncio.Event().wait()

        first = asyncio.ensure_future(
            forwarder.forward(SCOPE, slow_client_receive, slow_client_send, headers=[], body=b"")
        )
        await stalled.wait()
        hung_up.set()
        assert (await first).outcome == "client_disconnected"
        bodies = []
        for _ in range(3):
            sent, send = recording()
            await forwarder.forward(SCOPE, slow_client_receive, send, headers=[], body=b"")
            bodies.append(b"".join(m.get("body", b"") for m in sent))
        await client.aclose()
        return bodies

    try:
        assert asyncio.run(scenario()) == [b"second"] * 3
    finally:
        upstream.close()
