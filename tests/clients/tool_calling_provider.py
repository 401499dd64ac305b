"""The fake provider, able to call a tool the way a model does: a prompt carrying
`[[call TOOL {json arguments}]]` (the last one) is answered with a call to the client's
tool whose name ends with TOOL (Claude Code names MCP tools `mcp__<server>__<tool>`;
Codex puts them in a `mcp__<server>` namespace), in the request's own API (Anthropic
messages or OpenAI Responses, streamed). Once the request carries the tool's result, and
for every other request, the plain fake (tests/support.py) answers. Every request is
recorded there."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from tests.fake_upstream import FakeUpstream, Recorded, _send_sse

DIRECTIVE = re.compile(r"\[\[call (\w+) (\{.*?\})\]\]", re.DOTALL)


def directive(tool: str, arguments: dict[str, Any]) -> str:
    return f"[[call {tool} {json.dumps(arguments)}]]"


@dataclass
class ToolCallingProvider:
    plain: FakeUpstream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.plain(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = _json(body)
        call = _wanted_call(request) if request is not None else None
        path: str = scope["path"]
        if call is None or not path.endswith(("/v1/messages", "/v1/responses")):
            await self.plain(scope, _replay(body), send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        self.plain.requests.append(Recorded("POST", path, "", headers, body))
        tool, arguments = call
        if path.endswith("/v1/messages"):
            await _anthropic_tool_use(request, tool, arguments, send)
        else:
            await _responses_function_call(request, tool, arguments, send)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _replay(body: bytes) -> Receive:
    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _wanted_call(request: Any) -> tuple[str, dict[str, Any]] | None:
    """The directive's tool and arguments, unless the tool has answered already."""
    if not isinstance(request, dict) or _has_tool_result(request):
        return None
    turns = request.get("messages", request.get("input"))
    # The last one: recall may have put an earlier prompt's (a memory) before it.
    found = [match for text in _strings(turns) for match in DIRECTIVE.finditer(text)]
    if not found:
        return None
    return found[-1].group(1), json.loads(found[-1].group(2))


def _has_tool_result(request: dict[str, Any]) -> bool:
    items = request.get("messages") or request.get("input") or []
    if not isinstance(items, list):
        return False
    for item in items:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "function_call_output":
            return True
        content = item.get("content")
        if isinstance(content, list) and any(
            isinstance(part, dict) and part.get("type") == "tool_result" for part in content
        ):
            return True
    return False


def _tool_names(request: dict[str, Any]) -> Iterator[tuple[str | None, str]]:
    """(namespace, name) of each tool the client offers."""
    for tool in request.get("tools") or []:
        if tool.get("type") == "namespace":
            for inner in tool.get("tools") or []:
                yield tool.get("name"), inner.get("name", "")
        else:
            yield None, tool.get("name") or tool.get("function", {}).get("name", "")


def _offered(request: dict[str, Any], tool: str) -> tuple[str | None, str]:
    offered = [(space, name) for space, name in _tool_names(request) if name.endswith(tool)]
    if not offered:
        names = [name for _, name in _tool_names(request)]
        raise AssertionError(f"the client offers no tool named like {tool}: {names}")
    return offered[0]


async def _anthropic_tool_use(
    request: dict[str, Any], tool: str, arguments: dict[str, Any], send: Send
) -> None:
    _, name = _offered(request, tool)
    usage = {"input_tokens": 5, "output_tokens": 5}
    message = {
        "id": "msg_tool",
        "type": "message",
        "role": "assistant",
        "model": request.get("model", "fake"),
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }
    use = {"type": "tool_use", "id": "toolu_memory_1", "name": name, "input": {}}
    delta = {"type": "input_json_delta", "partial_json": json.dumps(arguments)}
    stop = {"stop_reason": "tool_use", "stop_sequence": None}
    start = {"type": "content_block_start", "index": 0, "content_block": use}
    await _send_sse(
        send,
        [
            ("message_start", {"type": "message_start", "message": message}),
            ("content_block_start", start),
            ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            ("message_delta", {"type": "message_delta", "delta": stop, "usage": usage}),
            ("message_stop", {"type": "message_stop"}),
        ],
    )


async def _responses_function_call(
    request: dict[str, Any], tool: str, arguments: dict[str, Any], send: Send
) -> None:
    namespace, name = _offered(request, tool)
    item: dict[str, Any] = {
        "type": "function_call",
        "id": "fc_memory_1",
        "call_id": "call_memory_1",
        "name": name,
        "arguments": json.dumps(arguments),
        "status": "completed",
    }
    if namespace:
        item["namespace"] = namespace
    usage = {
        "input_tokens": 5,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 10,
    }
    response = {
        "id": "resp_tool",
        "object": "response",
        "created_at": int(time.time()),
        "model": request.get("model", "fake"),
        "status": "completed",
        "output": [item],
        "usage": usage,
    }
    started = {**response, "status": "in_progress", "output": [], "usage": None}
    steps: list[dict[str, Any]] = [
        {"type": "response.created", "response": started},
        {"type": "response.output_item.added", "output_index": 0, "item": item},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {"type": "response.completed", "response": response},
    ]
    await _send_sse(
        send,
        [(step["type"], {**step, "sequence_number": n}) for n, step in enumerate(steps)],
    )
