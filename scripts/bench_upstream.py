"""A fast fake LiteLLM for scripts/bench: OpenAI-shaped JSON, and SSE with a fixed gap."""

from __future__ import annotations

import asyncio
import json

from starlette.types import Receive, Scope, Send

ANSWER = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "model": "bench",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    }
).encode()
JSON_HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(ANSWER)).encode()),
]
SSE_HEADERS = [(b"content-type", b"text/event-stream")]
EVENTS = 20
GAP_SECONDS = 0.01


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        for index in range(EVENTS):
            chunk = b'data: {"choices":[{"delta":{"content":"t%d"}}]}\n\n' % index
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await asyncio.sleep(GAP_SECONDS)
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": JSON_HEADERS})
    await send({"type": "http.response.body", "body": ANSWER})
