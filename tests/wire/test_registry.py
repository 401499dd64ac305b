"""Which format each path speaks: the lookup the pipeline, memory and accounting share."""

from __future__ import annotations

from typing import Any

import pytest

from memory_proxy.wire.registry import CHAT, CHAT_PATHS, WIRE_FORMATS, chat_format

CHAT_PATH = "/v1/chat/completions"


def test_memory_works_on_the_chat_apis_only() -> None:
    assert {
        "/v1/chat/completions",
        "/chat/completions",
        "/v1/messages",
        "/v1/responses",
    } == CHAT_PATHS
    assert chat_format("/chat/completions") is CHAT
    assert chat_format("/v1/completions") is None  # a prompt: accounting reads it, memory not
    assert chat_format("/v1/embeddings") is None


@pytest.mark.parametrize(
    ("path", "payload", "asked"),
    [
        ("/v1/chat/completions", {"stream": True}, {"include_usage": True}),
        ("/chat/completions", {"stream": True, "stream_options": {}}, {"include_usage": True}),
        ("/v1/completions", {"stream": True}, {"include_usage": True}),
        (CHAT_PATH, {"stream": True, "stream_options": {"include_usage": False}}, None),
        (CHAT_PATH, {"stream": True, "stream_options": {"include_usage": True}}, None),
        (CHAT_PATH, {"stream": True, "stream_options": "odd"}, None),
        ("/v1/chat/completions", {"stream": False}, None),
        ("/v1/chat/completions", {}, None),
        ("/v1/messages", {"stream": True}, None),  # Anthropic streams always carry usage
    ],
)
def test_stream_token_counts_are_asked_for_unless_the_client_decided(
    path: str, payload: dict[str, Any], asked: dict[str, bool] | None
) -> None:
    changed = WIRE_FORMATS[path].ask_stream_usage(payload)
    if asked is None:
        assert changed is None
    else:
        assert changed == {**payload, "stream_options": asked}
        assert "stream_options" not in payload or payload["stream_options"] == {}
