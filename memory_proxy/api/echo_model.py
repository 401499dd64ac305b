"""The offline `demo` model: an OpenAI-compatible chat endpoint served by the proxy itself,
which LiteLLM calls as a provider (see `config.yaml`).

It answers with what it received — how many messages, by role; memory blocks in the
system prompt; the start of each earlier turn, which session memory put back; the latest
user turn, where recalled memories are placed — so a newcomer sees memory at work without
any key ("my name is Ada", then "what is my name?": Ada comes back). LiteLLM's
`mock_response` cannot show this (its text is fixed) and cannot stream Anthropic
`/v1/messages` or `/v1/responses`; a real provider endpoint can, because LiteLLM then
converts its chat-completions answer into every API and stream format itself.

Served locally, never forwarded: it is not counted as usage and does not touch memory
(the request that reached LiteLLM through the proxy already was and did).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from memory_proxy.errors import error_response
from memory_proxy.identity.auth import is_loopback
from memory_proxy.memory.injection import approximate_tokens
from memory_proxy.records.messages import text_of

ECHO_PATH = "/demo/v1/chat/completions"
MAX_ECHOED_CHARS = 4000  # of the last user turn and of each memory block
MAX_EARLIER_TURNS = 10  # the latest ones, each cut to its first EARLIER_TURN_CHARS
EARLIER_TURN_CHARS = 80
# `<memory>…</memory>`, `<recalled-memories>…</recalled-memories>` and the like.
_MEMORY_BLOCK = re.compile(r"<([\w-]*memor[\w-]*)\b[^>]*>.*?</\1>", re.IGNORECASE | re.DOTALL)
_SYSTEM_ROLES = ("system", "developer")


def answer_text(messages: list[Any]) -> str:
    """What the echo model says about the messages it received."""
    roles = Counter(_role(message) for message in messages)
    by_role = ", ".join(f"{count} {role}" for role, count in roles.items()) or "none"
    noun = "message" if len(messages) == 1 else "messages"
    lines = [f"Echo model: I received {len(messages)} {noun} ({by_role})."]
    blocks = [
        _trimmed(block.group(0))
        for message in messages
        if _role(message) in _SYSTEM_ROLES
        for block in _MEMORY_BLOCK.finditer(_text(message))
    ]
    if blocks:
        lines += ["Memory in the system prompt:", *blocks]
    lines += _earlier_turns(messages)
    latest = _latest_user_turn(messages)
    if not latest:
        lines.append("There was no user message since the last answer.")
    else:
        heading = "Your last message:" if len(latest) == 1 else f"Your last {len(latest)} messages:"
        lines += [heading, _trimmed("\n".join(_text(message) for message in latest))]
    return "\n".join(lines)


def _earlier_turns(messages: list[Any]) -> list[str]:
    """A line per turn up to the last answer (the system prompt aside), the latest
    MAX_EARLIER_TURNS of them, each its role and the start of its text on one line."""
    turns = [m for m in messages[: _last_answer(messages) + 1] if _role(m) not in _SYSTEM_ROLES]
    if not turns:
        return []
    shown = turns[-MAX_EARLIER_TURNS:]
    heading = (
        "Earlier turns:"
        if len(shown) == len(turns)
        else f"Earlier turns (the last {len(shown)} of {len(turns)}):"
    )
    return [heading, *(f"{_role(m)}: {_start_of(_text(m))}" for m in shown)]


def _start_of(text: str) -> str:
    """The text on one line (its runs of white space one space each), cut after
    EARLIER_TURN_CHARS characters with an ellipsis."""
    line = " ".join(text.split())
    if len(line) <= EARLIER_TURN_CHARS:
        return line or "(no text)"
    return line[:EARLIER_TURN_CHARS] + "…"


def _latest_user_turn(messages: list[Any]) -> list[Any]:
    """The user messages after the last answer: one, unless a client or LiteLLM split the
    turn (Claude Code sends reminders next to its prompt; LiteLLM turns a system message
    among them into a user message). Recalled memories go with this turn."""
    return [m for m in messages[_last_answer(messages) + 1 :] if _role(m) == "user"]


def _last_answer(messages: list[Any]) -> int:
    """The index of the last assistant message, or -1."""
    return max((i for i, m in enumerate(messages) if _role(m) == "assistant"), default=-1)


def usage(messages: list[Any], text: str) -> dict[str, int]:
    """Token counts as the proxy estimates them elsewhere: about four characters a token."""
    prompt = sum(approximate_tokens({"role": "user", "content": _text(m)}) for m in messages)
    completion = approximate_tokens({"role": "assistant", "content": text})
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def completion(model: str, text: str, token_usage: dict[str, int], created: int) -> dict[str, Any]:
    """A chat-completions JSON answer."""
    return {
        "id": f"chatcmpl-echo-{created}",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": token_usage,
    }


def stream_events(
    model: str, text: str, token_usage: dict[str, int] | None, created: int
) -> Iterator[bytes]:
    """The same answer as server-sent chunks, a line each, as a provider streams: the role
    first, then the text, `finish_reason`, the usage chunk (empty `choices`) when asked
    for, and `[DONE]`."""
    base = {
        "id": f"chatcmpl-echo-{created}",
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
    }
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    deltas += [{"content": line} for line in text.splitlines(keepends=True)]
    for delta in deltas:
        yield _event({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
    yield _event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if token_usage is not None:
        yield _event({**base, "choices": [], "usage": token_usage})
    yield b"data: [DONE]\n\n"


async def echo(request: Request) -> Response:
    """`POST /demo/v1/chat/completions`, for callers on this machine only (LiteLLM)."""
    path = request.url.path
    if not is_loopback(request.client.host if request.client else None):
        return error_response(path, 403, "the demo model answers callers on this machine only")
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        body = None
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list):
        return error_response(path, 400, "expected a JSON body with a list of messages")
    model = body.get("model")
    model = model if isinstance(model, str) else "demo"
    text = answer_text(messages)
    token_usage = usage(messages, text)
    created = int(time.time())
    if body.get("stream") is not True:
        return Response(
            orjson.dumps(completion(model, text, token_usage, created)),
            media_type="application/json",
        )
    options = body.get("stream_options")
    wants_usage = isinstance(options, dict) and options.get("include_usage") is True
    events = stream_events(model, text, token_usage if wants_usage else None, created)
    return StreamingResponse(_each(events), media_type="text/event-stream")


async def _each(events: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Sent one by one, without the thread hop Starlette makes for a plain iterator."""
    for event in events:
        yield event


def _event(chunk: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def _role(message: Any) -> str:
    role = message.get("role") if isinstance(message, dict) else None
    return role if isinstance(role, str) and role else "unknown"


def _text(message: Any) -> str:
    return text_of(message.get("content")) if isinstance(message, dict) else ""


def _trimmed(text: str) -> str:
    """Its start and its end: recalled memories and the client's own words (Claude Code
    puts its reminders first and the prompt last) both show."""
    if len(text) <= MAX_ECHOED_CHARS:
        return text
    half = MAX_ECHOED_CHARS // 2
    return f"{text[:half]}\n… ({len(text) - 2 * half} characters left out) …\n{text[-half:]}"
