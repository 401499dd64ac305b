"""The caller of a local endpoint, identified once in front of all of them (api/caller.py),
and what each endpoint then decides by it, through a real proxy."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from memory_proxy.api.caller import IdentifiedCaller, caller_of
from memory_proxy.config import ClientKey
from memory_proxy.identity.auth import LOCAL_CALLER, Caller, RawHeaders
from tests.conftest import ProxyFactory

OUR_KEY = "mp-client-key-0123456789"
BOUND_KEY = "mp-bound-key-0123456789ab"
KEYS = (ClientKey(OUR_KEY), ClientKey(BOUND_KEY, "pycharm-ai"))


def test_the_middleware_identifies_each_request_once_from_its_headers_and_address() -> None:
    asked: list[tuple[list[tuple[bytes, bytes]], str | None]] = []
    seen: list[Caller] = []

    def identify(headers: RawHeaders, host: str | None) -> Caller:
        asked.append((list(headers), host))
        return LOCAL_CALLER

    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(caller_of(Request(scope)))

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        pass

    app = IdentifiedCaller(endpoint, identify)
    headers = [(b"x-api-key", b"k")]
    scope: dict[str, Any] = {"type": "http", "headers": headers, "client": ("127.0.0.1", 1)}
    asyncio.run(app(scope, receive, send))
    asyncio.run(app({"type": "http", "headers": []}, receive, send))  # no client address
    assert asked == [(headers, "127.0.0.1"), ([], None)]
    assert seen == [LOCAL_CALLER, LOCAL_CALLER]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (None, {"/v1/usage": 401, "/v1/sessions": 401, "/v1/live": 401, "/metrics": 401}),
        (OUR_KEY, {"/v1/usage": 200, "/v1/sessions": 200, "/metrics": 200}),
        (BOUND_KEY, {"/v1/usage": 200, "/v1/sessions": 200, "/metrics": 403}),
        ("sk-virtual", {"/v1/usage": 401, "/v1/sessions": 401, "/metrics": 401}),
    ],
    ids=["no key", "client key", "bound key", "pass-through"],
)
def test_every_local_endpoint_judges_the_caller_the_middleware_found(
    run_proxy: ProxyFactory, key: str | None, expected: dict[str, int]
) -> None:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    with run_proxy("http://127.0.0.1:9", client_keys=KEYS) as proxy:
        answers = {path: httpx.get(f"{proxy}{path}", headers=headers) for path in expected}
        health = httpx.get(f"{proxy}/health", headers=headers)
    assert {path: answer.status_code for path, answer in answers.items()} == expected
    trusted = key in (OUR_KEY, BOUND_KEY)
    assert ("litellm_url" in health.json()) is trusted
