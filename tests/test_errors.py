"""One exception hierarchy, and one answer for each of its errors in the client's format."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.responses import Response

import memory_proxy
from memory_proxy.config import ConfigError
from memory_proxy.errors import (
    ClientDisconnected,
    ProxyError,
    Refusal,
    StaleConnection,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
    error_answer,
)
from memory_proxy.forwarding.forwarder import RequestTooLarge
from memory_proxy.forwarding.header_safety import UnsafeHeader
from memory_proxy.identity.client_detection import InvalidIdentifier
from memory_proxy.stores.base import StoreUnavailable

OPENAI_PATH = "/v1/chat/completions"
ANTHROPIC_PATH = "/v1/messages"


def answered(path: str, error: ProxyError) -> tuple[Response, Any]:
    """The answer and its decoded body."""
    answer = error_answer(path, error)
    return answer, json.loads(bytes(answer.body))


def test_every_exception_of_the_proxy_is_a_proxy_error() -> None:
    """A new exception class joins the hierarchy, so that `error_answer` can answer it."""
    outside = []
    for module in pkgutil.walk_packages(memory_proxy.__path__, "memory_proxy."):
        for name, value in inspect.getmembers(importlib.import_module(module.name)):
            if (
                inspect.isclass(value)
                and value.__module__ == module.name
                and issubclass(value, BaseException)
                and not issubclass(value, ProxyError)
            ):
                outside.append(f"{module.name}.{name}")
    assert outside == []


@pytest.mark.parametrize(
    ("error", "status", "retry_after", "anthropic_type"),
    [
        (Refusal(401, "no key"), 401, None, "authentication_error"),
        (InvalidIdentifier("x-memory-user-id must be 1 to 128 letters"), 400, None, None),
        (RequestTooLarge(64), 413, None, "request_too_large"),
        (UnsafeHeader("header 'x-a'"), 400, None, None),
        (UpstreamUnavailable("LiteLLM is not available"), 503, "5", "overloaded_error"),
        (UpstreamError("LiteLLM failed to answer: reset"), 502, "5", "api_error"),
        (StaleConnection("closed before answering"), 502, "5", "api_error"),
        (UpstreamTimeout("LiteLLM did not answer within 1 s"), 504, None, "api_error"),
        (StoreUnavailable("memory.sqlite_path: cannot use /x"), 503, None, "overloaded_error"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, ProxyError) else None,
)
def test_each_error_is_answered_with_its_status_message_and_retry_after(
    error: ProxyError, status: int, retry_after: str | None, anthropic_type: str | None
) -> None:
    openai, openai_body = answered(OPENAI_PATH, error)
    anthropic, anthropic_body = answered(ANTHROPIC_PATH, error)
    assert openai.status_code == anthropic.status_code == status
    assert openai.headers.get("retry-after") == anthropic.headers.get("retry-after") == retry_after
    assert openai_body["error"]["message"] == str(error)
    assert anthropic_body["type"] == "error" and anthropic_body["error"]["message"] == str(error)
    assert anthropic_body["error"]["type"] == (anthropic_type or "invalid_request_error")


def test_a_refusal_keeps_its_own_headers() -> None:
    limit = [(b"x-ratelimit-limit-requests", b"10"), (b"x-ratelimit-remaining-requests", b"0")]
    answer = error_answer(OPENAI_PATH, Refusal(429, "slow down", retry_after=7, headers=limit))
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "7"
    assert answer.headers["x-ratelimit-remaining-requests"] == "0"


def test_errors_nobody_is_answered_with_still_belong() -> None:
    """The client gone (logged as nginx's 499) and a bad setting (an exit status)."""
    assert issubclass(ClientDisconnected, ProxyError) and ClientDisconnected.status == 499
    assert issubclass(ConfigError, ProxyError)


@given(
    st.text(),
    st.sampled_from([OPENAI_PATH, ANTHROPIC_PATH, "/anthropic/v1/messages", "/v1/responses"]),
    st.sampled_from([400, 401, 403, 404, 413, 415, 421, 429, 451, 500, 502, 503, 504]),
)
def test_any_message_reaches_the_client_whole_as_json(message: str, path: str, status: int) -> None:
    answer, body = answered(path, Refusal(status, message))
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/json"
    assert body["error"]["message"] == message
