"""A fake LiteLLM (or provider) for the tests: an ASGI app that records every request and
answers each chat API as LiteLLM does, streamed or not, with token counts and a cost; it
can hold a stream open until the test releases it."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.types import Receive, Scope, Send

from memory_proxy.forwarding.upstream import HttpxClient, UpstreamClient

LLM_PATHS = ("/chat/completions", "/v1/messages", "/v1/responses")


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    raw_headers: list[tuple[bytes, bytes]] = field(default_factory=list)  # every occurrence


# What LiteLLM says a call cost, on the fake's JSON chat and messages answers.
COST_HEADER = (b"x-litellm-response-cost", b"0.00042")


@dataclass
class FakeUpstream:
    """An ASGI stand-in for LiteLLM or a provider.

    - `/stream?events=N`: SSE; after the first event it waits for `release` before the rest.
    - `/endless`: one chunk, then waits for the client to go away (sets `saw_disconnect`).
    - `.../chat/completions`: an OpenAI-shaped answer, streamed when the body asks, with
      token counts (at the stream's end only when `stream_options.include_usage` asks).
    - `.../v1/messages`, `.../v1/responses`: the same in Anthropic's and OpenAI Responses'.
    - anything else: a JSON echo of the request.
    """

    requests: list[Recorded] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    saw_disconnect: threading.Event = field(default_factory=threading.Event)
    reply_text: str = "Hello from the fake provider"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        record = Recorded(
            scope["method"],
            scope["path"],
            scope["query_string"].decode(),
            headers,
            body,
            list(scope["headers"]),
        )
        self.requests.append(record)
        path = scope["path"]
        try:
            request = json.loads(body or b"{}")
        except (ValueError, RecursionError):
            request = None
        if not isinstance(request, dict) and scope["method"] == "POST" and path.endswith(LLM_PATHS):
            await _send_json(send, 400, {"error": {"message": "invalid JSON body"}})
        elif path == "/stream":
            await self._stream(scope, send)
        elif path == "/endless":
            await self._endless(receive, send)
        elif path.endswith("/chat/completions"):
            await self._chat(request, send)
        elif path.endswith("/v1/messages"):
            await self._messages(request, send)
        elif path.endswith("/v1/responses"):
            await self._responses(request, send)
        else:
            echo = {
                "method": record.method,
                "path": record.path,
                "query": record.query,
                "headers": headers,
                "body_length": len(body),
            }
            await _send_json(send, 200, echo, extra_headers=[(b"x-upstream", b"fake")])

    async def _stream(self, scope: Scope, send: Send) -> None:
        query = dict(p.split("=") for p in scope["query_string"].decode().split("&") if p)
        events = int(query.get("events", "3"))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        for index in range(events):
            chunk = f"data: event-{index}\n\n".encode()
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if index == 0:
                released = await asyncio.to_thread(self.release.wait, 10)
                if not released:
                    raise RuntimeError("the test never released the stream")
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _endless(self, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        message = await receive()
        if message["type"] == "http.disconnect":
            self.saw_disconnect.set()

    async def _chat(self, request: dict[str, Any], send: Send) -> None:
        model = request.get("model", "fake")
        if not request.get("stream"):
            answer = {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": self.reply_text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10},
            }
            await _send_json(send, 200, answer, extra_headers=[COST_HEADER])
            return
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": model}
        events: list[tuple[str | None, Any]] = [
            (None, {**base, "choices": [{"index": 0, "delta": {"content": word}}]})
            for word in self._words()
        ]
        stop = {"index": 0, "delta": {}, "finish_reason": "stop"}
        events.append((None, {**base, "choices": [stop]}))
        options = request.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            usage = {"prompt_tokens": 4, "completion_tokens": 6, "total_tokens": 10}
            events.append((None, {**base, "choices": [], "usage": usage}))
        events.append((None, "[DONE]"))
        await _send_sse(send, events)

    async def _messages(self, request: dict[str, Any], send: Send) -> None:
        model = request.get("model", "fake")
        usage = {"input_tokens": 5, "output_tokens": 5}
        if not request.get("stream"):
            answer = {
                "id": "msg_fake",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": self.reply_text}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": usage,
            }
            await _send_json(send, 200, answer, extra_headers=[COST_HEADER])
            return
        message = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        }
        events: list[tuple[str | None, Any]] = [
            ("message_start", {"type": "message_start", "message": message}),
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
        ]
        events += [
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": word},
                },
            )
            for word in self._words()
        ]
        events += [
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": 8},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        await _send_sse(send, events)

    async def _responses(self, request: dict[str, Any], send: Send) -> None:
        """The Responses API's documented event sequence: Codex needs the item events."""
        text = {"type": "output_text", "text": self.reply_text, "annotations": []}
        message = {"type": "message", "id": "msg_1", "status": "completed", "role": "assistant"}
        usage = {
            "input_tokens": 5,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 5,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 10,
        }
        response = {
            "id": "resp_1",
            "object": "response",
            "created_at": int(time.time()),
            "model": request.get("model", "fake"),
            "status": "completed",
            "output": [{**message, "content": [text]}],
            "usage": usage,
        }
        if not request.get("stream"):
            await _send_json(send, 200, response)
            return
        started = {**response, "status": "in_progress", "output": [], "usage": None}
        at = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
        steps: list[dict[str, Any]] = [
            {"type": "response.created", "response": started},
            {"type": "response.in_progress", "response": started},
            {
                "type": "response.output_item.added",
                "output_index": 0,
                "item": {**message, "status": "in_progress", "content": []},
            },
            {"type": "response.content_part.added", **at, "part": {**text, "text": ""}},
        ]
        steps += [
            {"type": "response.output_text.delta", **at, "delta": word} for word in self._words()
        ]
        steps += [
            {"type": "response.output_text.done", **at, "text": self.reply_text},
            {"type": "response.content_part.done", **at, "part": text},
            {"type": "response.output_item.done", "output_index": 0, "item": response["output"][0]},
            {"type": "response.completed", "response": response},
        ]
        events: list[tuple[str | None, Any]] = [
            (step["type"], {**step, "sequence_number": number}) for number, step in enumerate(steps)
        ]
        await _send_sse(send, events)

    def _words(self) -> list[str]:
        words = self.reply_text.split(" ")
        return [words[0]] + [" " + word for word in words[1:]]


async def _send_sse(send: Send, events: list[tuple[str | None, Any]]) -> None:
    """Each event in its own chunk, as a real provider streams them."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream")],
        }
    )
    for name, data in events:
        head = f"event: {name}\n" if name else ""
        payload = data if isinstance(data, str) else json.dumps(data)
        chunk = f"{head}data: {payload}\n\n".encode()
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _send_json(
    send: Send, status: int, payload: Any, extra_headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": headers + (extra_headers or []),
        }
    )
    await send({"type": "http.response.body", "body": body})


IN_PROCESS_URL = "http://in-process-litellm.invalid"


def in_process(app: Any) -> UpstreamClient:
    """`app` as the proxy's upstream, without a socket: httpx's `ASGITransport` (the
    `MockTransport` pattern, an ASGI app for a handler) behind the proxy's own
    `HttpxClient`, the client it uses for an https LiteLLM. The transport reads the whole
    answer before handing it on, so this is for tests of what is sent and decided, not of
    streaming, pooling or timing: those keep a real server."""
    return HttpxClient(httpx.ASGITransport(app=app), IN_PROCESS_URL)
