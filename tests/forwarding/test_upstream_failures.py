"""An upstream that misbehaves — stays silent, stops mid-answer, sends an oversized head,
closes a kept-alive connection — meets a proxy that answers its client in the client's
format and never holds a request, a task or a connection forever. Each runs over both
upstream clients (tests/forwarding/conftest.py), against a raw server on loopback whose
every byte the test writes."""

from __future__ import annotations

import logging
import re
import socket
import threading

import httpx
import pytest

from memory_proxy.logging_setup import ACCESS_LOGGER
from tests.conftest import ProxyFactory
from tests.forwarding.raw_upstream import RawUpstream, read_request, wait_for_close
from tests.support import LogRecords, wait_until

CHAT = ("/v1/chat/completions", {"model": "m", "messages": []})


def in_flight(proxy: str) -> float:
    metrics = httpx.get(f"{proxy}/metrics").text
    gauge = re.search(r"^memory_proxy_requests_in_flight (\S+)$", metrics, re.M)
    assert gauge is not None, metrics
    return float(gauge[1])


def test_a_client_leaving_a_silent_upstream_frees_the_request_and_its_connection(
    run_proxy: ProxyFactory,
) -> None:
    received, closed = threading.Event(), threading.Event()

    def silent(connection: socket.socket) -> None:
        read_request(connection)
        received.set()
        wait_for_close(connection, closed)

    upstream = RawUpstream(silent)
    try:
        with run_proxy(upstream.url) as proxy:
            port = int(proxy.rsplit(":", 1)[1])
            body = b'{"model": "m", "messages": []}'
            with socket.create_connection(("127.0.0.1", port)) as client:
                client.sendall(
                    b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%b"
                    % (len(body), body)
                )
                assert received.wait(10)
                assert in_flight(proxy) == 1  # read where the pipeline counts it
            assert closed.wait(10)
            wait_until(lambda: in_flight(proxy) == 0)
    finally:
        upstream.close()


@pytest.mark.parametrize(
    ("path", "shape"), [("/v1/chat/completions", "openai"), ("/v1/messages", "anthropic")]
)
def test_an_upstream_that_never_answers_gives_504_in_the_clients_format(
    run_proxy: ProxyFactory, path: str, shape: str
) -> None:
    closed = threading.Event()

    def silent(connection: socket.socket) -> None:
        read_request(connection)
        wait_for_close(connection, closed)

    upstream = RawUpstream(silent)
    try:
        with run_proxy(upstream.url, upstream_first_byte_timeout_seconds=0.3) as proxy:
            response = httpx.post(f"{proxy}{path}", json={"model": "m"}, timeout=30)
    finally:
        upstream.close()
    assert response.status_code == 504
    error = response.json()
    if shape == "anthropic":
        assert error["type"] == "error" and error["error"]["type"] == "api_error"
    else:
        assert error["error"]["type"] == "timeout_error"
    assert "did not answer within 0.3 s" in response.text
    assert closed.wait(10)


def test_an_answer_that_stops_mid_stream_is_cut_after_the_idle_timeout(
    run_proxy: ProxyFactory,
) -> None:
    closed = threading.Event()

    def stalls(connection: socket.socket) -> None:
        read_request(connection)
        connection.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\nd\r\ndata: first\n\n\r\n"
        )
        wait_for_close(connection, closed)

    upstream = RawUpstream(stalls)
    path, body = CHAT
    records = LogRecords()
    try:
        with (
            run_proxy(upstream.url, upstream_idle_timeout_seconds=0.3) as proxy,
            records.of("uvicorn.error", "memory_proxy"),
            httpx.stream(
                "POST", f"{proxy}{path}", json=body, headers={"x-request-id": "idle-1"}, timeout=30
            ) as response,
        ):
            chunks = response.iter_raw()
            assert next(chunks) == b"data: first\n\n"
            with pytest.raises(httpx.RemoteProtocolError):  # cut, not a falsely clean end
                next(chunks)
    finally:
        upstream.close()
    assert closed.wait(10)
    assert_one_warning_about(records, "idle-1", "LiteLLM sent nothing for 0.3 s")


@pytest.mark.parametrize(
    "headers",
    [
        b"X-Big: " + b"a" * 100_000 + b"\r\n",
        b"".join(b"X-%d: %b\r\n" % (i, b"v" * 90) for i in range(1000)),
    ],
    ids=["one huge header", "a thousand headers"],
)
def test_an_oversized_answer_head_gives_502(run_proxy: ProxyFactory, headers: bytes) -> None:
    def oversized(connection: socket.socket) -> None:
        read_request(connection)
        connection.sendall(b"HTTP/1.1 200 OK\r\n%bContent-Length: 2\r\n\r\nok" % headers)

    upstream = RawUpstream(oversized)
    path, body = CHAT
    try:
        with run_proxy(upstream.url) as proxy:
            response = httpx.post(f"{proxy}{path}", json=body, timeout=30)
    finally:
        upstream.close()
    assert response.status_code == 502
    assert "LiteLLM failed to answer" in response.json()["error"]["message"]


@pytest.mark.parametrize("upstream_kind", ["http1"])  # aiohttp's pool answers 502 there
def test_a_request_meeting_a_kept_alive_connection_just_closed_is_sent_again(
    run_proxy: ProxyFactory, upstream_kind: str
) -> None:
    """As right after `kill -9` of LiteLLM: the pooled connection dies under the next
    request before any byte of answer. LiteLLM never processed it, so it is held and
    sent again once LiteLLM answers; a fresh connection dying so is never retried (see
    test_forwarder's test_an_upstream_that_hangs_up_gives_502...)."""
    calls: list[bytes] = []

    def dies_under_the_second_call(connection: socket.socket) -> None:
        while request := read_request(connection):
            if b"/v1/chat/completions" in request:
                calls.append(request)
                if len(calls) == 2:
                    return  # closed without a byte of answer
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    upstream = RawUpstream(dies_under_the_second_call)
    path, body = CHAT
    try:
        with run_proxy(upstream.url, upstream_wait_seconds=10) as proxy:
            first = httpx.post(f"{proxy}{path}", json=body, timeout=30)
            second = httpx.post(f"{proxy}{path}", json=body, timeout=30)
    finally:
        upstream.close()
    assert (first.status_code, second.status_code, second.content) == (200, 200, b"ok")
    assert len(calls) == 3
    assert upstream.connections >= 2  # sent again on another connection


CUT_ANSWERS = {
    "json": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    b'{"choices": [{"message": {"content": "Hel',
    "sse": b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
    b"Transfer-Encoding: chunked\r\n\r\nd\r\ndata: first\n\n\r\n",
}


@pytest.mark.parametrize("kind", sorted(CUT_ANSWERS))
def test_an_answer_cut_short_upstream_reaches_the_client_unfinished_and_is_logged_once(
    run_proxy: ProxyFactory, kind: str
) -> None:
    """The client sees the cut (its transfer fails); the log has one warning naming the
    request, not uvicorn's error without context."""

    def cuts(connection: socket.socket) -> None:
        read_request(connection)
        connection.sendall(CUT_ANSWERS[kind])  # then the connection closes

    upstream = RawUpstream(cuts)
    path, body = CHAT
    records = LogRecords()
    try:
        with (
            run_proxy(upstream.url) as proxy,
            records.of("uvicorn.error", "memory_proxy"),
            httpx.stream(
                "POST", f"{proxy}{path}", json=body, headers={"x-request-id": "cut-1"}
            ) as response,
        ):
            assert response.status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):  # cut, not a falsely clean end
                response.read()
    finally:
        upstream.close()
    assert_one_warning_about(records, "cut-1", "cut short")


def assert_one_warning_about(records: LogRecords, request_id: str, text: str) -> None:
    """The request's log is complete (its access line written), with no error in it and
    one warning naming it."""
    wait_until(lambda: any(r.name == ACCESS_LOGGER for r in records))
    assert [r.getMessage() for r in records if r.levelno >= logging.ERROR] == []
    (warning,) = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert request_id in warning and text in warning
