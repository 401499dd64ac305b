"""Anthropic messages to and from the neutral (OpenAI-shaped) messages memory stores.

Tool use survives the round trip: an assistant's `tool_use` blocks become `tool_calls`, a
user's `tool_result` blocks become `tool` messages, and back again. Going back, history
obeys Anthropic's rules: it opens with the user, roles alternate, it ends with the
assistant (the client's own message comes next), and every `tool_use` is answered by a
`tool_result` in the very next user message — a call or a result without its partner (cut
off by trimming, say) is left out.
"""

from __future__ import annotations

import json
from typing import Any

from memory_proxy.records.messages import Message, RawMessage, ToolCall, stored_text

Block = dict[str, Any]


def from_anthropic(message: dict[str, Any]) -> list[RawMessage]:
    """One Anthropic message as neutral messages: tool results first, as Anthropic orders
    them, then the text. Nothing for a message with another role, or whose content is
    neither text nor a list of blocks; a tool call or result with odd fields comes out
    ill-formed, for the caller to leave out."""
    role = message.get("role")
    content = message.get("content")
    text = stored_text(content)
    if role not in ("user", "assistant") or text is None:  # a tuple: any JSON compares
        return []
    if not isinstance(content, list):
        return [{"role": role, "content": text}]
    text = "".join(block.get("text", "") for block in content if block["type"] == "text")
    if role == "assistant":
        calls = [_tool_call(block) for block in content if block["type"] == "tool_use"]
        return [{"role": "assistant", "content": text, **({"tool_calls": calls} if calls else {})}]
    neutral: list[RawMessage] = [
        {
            "role": "tool",
            "tool_call_id": block.get("tool_use_id"),
            "content": stored_text(block.get("content", "")),
        }
        for block in content
        if block["type"] == "tool_result"
    ]
    if text or not neutral:
        neutral.append({"role": role, "content": text})
    return neutral


def tool_results_in(messages: list[Message]) -> set[str]:
    """Ids of the tool calls the client's leading tool messages answer."""
    answered = set()
    for message in messages:
        if message["role"] != "tool":
            break
        answered.add(message.get("tool_call_id", ""))
    return answered


def to_anthropic(history: list[Message], answered_next: set[str]) -> list[dict[str, Any]]:
    """History as Anthropic messages; `answered_next`: the tool calls the client's own next
    message answers (a trailing `tool_use` is kept only for those)."""
    turns = _merged([_turn(message) for message in history])
    while True:
        kept = _merged(_paired(turns, answered_next))
        while kept and kept[0][0] != "user":
            kept.pop(0)
        if kept and kept[-1][0] == "user":
            kept.pop()
        if kept == turns:
            break
        turns = kept
    return [{"role": role, "content": _content(blocks)} for role, blocks in turns]


def _tool_call(block: Block) -> dict[str, Any]:
    """Its input, an object, as JSON text; an input of another kind leaves the call
    without arguments (ill-formed)."""
    arguments = block.get("input", {})
    return {
        "id": block.get("id"),
        "type": "function",
        "function": {
            "name": block.get("name"),
            "arguments": json.dumps(arguments) if isinstance(arguments, dict) else None,
        },
    }


def _turn(message: Message) -> tuple[str, list[Block]]:
    role = message["role"]
    if role == "tool":
        result = {
            "type": "tool_result",
            "tool_use_id": message.get("tool_call_id", ""),
            "content": message["content"],
        }
        return "user", [result]
    blocks: list[Block] = (
        [{"type": "text", "text": message["content"]}] if message["content"] else []
    )
    if role == "assistant":
        blocks += [_tool_use(call) for call in message.get("tool_calls") or []]
        return "assistant", blocks
    return ("user", blocks) if role == "user" else ("skip", [])


def _tool_use(call: ToolCall) -> Block:
    function = call["function"]
    try:
        arguments = json.loads(function["arguments"] or "{}")
    except (ValueError, RecursionError):  # a client's text: any string, nested anyhow
        arguments = {}
    return {
        "type": "tool_use",
        "id": call["id"],
        "name": function["name"],
        "input": arguments if isinstance(arguments, dict) else {},
    }


def _merged(turns: list[tuple[str, list[Block]]]) -> list[tuple[str, list[Block]]]:
    """Empty and unknown turns dropped, neighbours of one role joined, tool results first."""
    merged: list[tuple[str, list[Block]]] = []
    for role, blocks in turns:
        if role == "skip" or not blocks:
            continue
        if merged and merged[-1][0] == role:
            blocks = merged.pop()[1] + blocks
        if role == "user":
            blocks = sorted(blocks, key=lambda block: block["type"] != "tool_result")
        merged.append((role, blocks))
    return merged


def _paired(
    turns: list[tuple[str, list[Block]]], answered_next: set[str]
) -> list[tuple[str, list[Block]]]:
    """Tool calls answered in the next turn, and tool results whose call is in the last."""
    paired = []
    for index, (role, blocks) in enumerate(turns):
        if role == "assistant":
            following = turns[index + 1][1] if index + 1 < len(turns) else None
            answered = (
                {b["tool_use_id"] for b in following if b["type"] == "tool_result"}
                if following is not None
                else answered_next
            )
            blocks = [b for b in blocks if b["type"] != "tool_use" or b["id"] in answered]
        else:
            previous = turns[index - 1][1] if index > 0 else []
            called = {b["id"] for b in previous if b["type"] == "tool_use"}
            blocks = [b for b in blocks if b["type"] != "tool_result" or b["tool_use_id"] in called]
        paired.append((role, blocks))
    return paired


def _content(blocks: list[Block]) -> str | list[Block]:
    """Plain text stays a string, as clients send it."""
    if all(block["type"] == "text" for block in blocks):
        return "\n\n".join(block["text"] for block in blocks)
    return blocks
