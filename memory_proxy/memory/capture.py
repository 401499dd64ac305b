"""Reading the answer out of the bytes streaming past, without holding any up: the
assistant's message (for memory) and the token usage and cost (for usage records).

Chunks are fed after they were sent to the client. SSE streams are split event by event,
however the bytes were split. The message is read in the OpenAI chat format
(`choices[0].delta.content`), Anthropic's (`content_block_delta` text and `tool_use`) and the OpenAI
Responses format (`response.output_text.delta`). Token counts are read from the last
`"usage"` object of a JSON answer or of each SSE event that has one, without decoding the
rest: a large answer that memory does not need is never parsed whole. A gzipped answer
(LiteLLM gzips whole JSON answers of 500 bytes or more for clients that accept it) is read
through a decompressor, bounded like the rest; the client still gets the bytes as sent.

The answer comes from LiteLLM, after its bytes went to the client: any shape is read
without raising (what is not understood is skipped, and a message that is not well-formed
is not remembered), so the request always ends with its usage record.
"""

from __future__ import annotations

import json
import logging
import math
import re
import zlib
from dataclasses import dataclass
from typing import Any

import orjson

from memory_proxy.logging_setup import log_failure
from memory_proxy.memory.anthropic_format import from_anthropic
from memory_proxy.memory.finish_reason import MAY_END, reason_in, reason_in_tail
from memory_proxy.records.messages import ApiKind, Message, RawMessage, well_formed

logger = logging.getLogger("memory_proxy.capture")

MAX_CAPTURED_BYTES = 8 * 1024 * 1024
# Usage comes last in the JSON answers of OpenAI, Anthropic and LiteLLM: without the text,
# only this much of the end of a JSON answer is kept.
USAGE_TAIL_BYTES = 64 * 1024
COST_HEADER = b"x-litellm-response-cost"
# Inside a JSON string every quote is escaped, so this can only be a key.
_USAGE_KEY = re.compile(rb'"usage"\s*:\s*')
_DECODER = json.JSONDecoder()


@dataclass
class TokenUsage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    def update(self, usage: dict[str, Any]) -> None:
        """Later reports win, field by field: Anthropic streams the prompt's count first
        and the completion's last."""
        if "prompt_tokens" in usage or "completion_tokens" in usage:  # OpenAI, LiteLLM
            prompt = usage.get("prompt_tokens")
            completion = usage.get("completion_tokens")
        else:  # Anthropic and OpenAI Responses; cached prompt tokens are prompt tokens too
            parts = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
            counts = [usage[p] for p in parts if isinstance(usage.get(p), int)]
            prompt = sum(counts) if counts else None
            completion = usage.get("output_tokens")
        if isinstance(prompt, int):
            self.prompt_tokens = prompt
        if isinstance(completion, int):
            self.completion_tokens = completion


def last_usage(data: bytes | bytearray) -> dict[str, Any] | None:
    """The last `"usage": {...}` object in a JSON text, decoding nothing else."""
    end = len(data)
    while (start := data.rfind(b'"usage"', 0, end)) != -1:
        key = _USAGE_KEY.match(data, start)
        if key is not None:
            try:
                value, _ = _DECODER.raw_decode(data[key.end() :].decode("utf-8", "replace"))
            except (ValueError, RecursionError):
                return None
            return value if isinstance(value, dict) else None
        end = start
    return None


class AnswerCapture:
    """`api` is the chat format to read the message in; None reads only usage and cost."""

    def __init__(self, api: ApiKind | None) -> None:
        self._api = api
        self._mode: str | None = None  # "json" | "sse" | None (not captured)
        self._buffer = bytearray()
        self._gunzip: zlib._Decompress | None = None
        self._text: list[str] = []
        self._tool_calls: dict[int, dict[str, Any]] = {}
        self.complete = False
        self.usage = TokenUsage()
        self.cost: float | None = None
        self.finish_reason: str | None = None  # as the answer said; None if it did not

    def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        names = {name.lower(): value.lower() for name, value in headers}
        self.cost = _as_cost(names.get(COST_HEADER))
        if status != 200:
            return
        encoding = names.get(b"content-encoding", b"identity")
        if encoding == b"gzip":
            self._gunzip = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        elif encoding != b"identity":
            logger.info("%s-encoded answer passed through without capture", encoding.decode())
            return
        content_type = names.get(b"content-type", b"")
        if b"text/event-stream" in content_type:
            self._mode = "sse"
        elif b"json" in content_type:
            self._mode = "json"

    def feed(self, chunk: bytes) -> None:
        if self._mode is None:
            return
        if self._gunzip is not None and not (chunk := self._decompressed(chunk)):
            return
        if self._skippable(chunk):
            return
        self._buffer += chunk
        if self._mode == "sse":
            try:
                self._parse_events()
            except Exception as exc:
                self._give_up(exc)
                return
        elif self._api is None:
            del self._buffer[:-USAGE_TAIL_BYTES]
        if len(self._buffer) > MAX_CAPTURED_BYTES:
            self._mode = None  # too large to remember; the client still gets every byte
            self._buffer.clear()

    def _decompressed(self, chunk: bytes) -> bytes:
        """At most what may still be captured; past that, or on bad data, capture stops."""
        assert self._gunzip is not None
        room = MAX_CAPTURED_BYTES - len(self._buffer) + 1
        try:
            data = self._gunzip.decompress(chunk, room)
        except zlib.error:
            logger.info("undecodable gzipped answer passed through without capture")
            data, self._mode = b"", None
        if self._gunzip.unconsumed_tail:  # too large to remember
            data, self._mode = b"", None
        if self._mode is None:
            self._buffer.clear()
        return data

    def _skippable(self, chunk: bytes) -> bool:
        """Whole SSE events without token counts, when only usage is read: nothing here."""
        return (
            self._api is None
            and self._mode == "sse"
            and not self._buffer
            and chunk.endswith(b"\n\n")
            and b'"usage"' not in chunk
            and MAY_END.search(chunk) is None
        )

    def finish(self) -> None:
        """The answer ended (or was cut short): read what a JSON answer says."""
        if self._mode != "json" or not self._buffer:
            return
        try:
            if usage := last_usage(self._buffer):
                self.usage.update(usage)
            # The reason is searched for first; the answer is decoded once, only when
            # memory wants its message or the reason was not found (the Responses API
            # puts its status first, where a long answer's kept tail does not reach).
            reason = reason_in_tail(self._buffer)
            body = _json_object(self._buffer) if reason is None or self._api else None
            self.finish_reason = reason or (reason_in(body) if body is not None else None)
            if self._api is not None and body is not None:
                self._read_message(body)
        except Exception as exc:
            self._give_up(exc)
        self._buffer.clear()

    def _give_up(self, exc: Exception) -> None:
        """A shape the reading below did not foresee: read no more of this answer."""
        log_failure(logger, "answer not understood; not captured", exc)
        self._mode = None
        self._buffer.clear()

    def answer(self) -> Message | None:
        """The assistant message (neutral shape), or None when nothing well-formed was
        captured, or nothing at all: a 200 that is no completion, or a stream with no
        text and no tool call, is not an (empty) assistant turn to remember."""
        text = "".join(self._text)
        if self._mode is None or (not text.strip() and not self._tool_calls):
            return None
        message: RawMessage = {"role": "assistant", "content": text}
        if self._tool_calls:
            message["tool_calls"] = [self._tool_calls[i] for i in sorted(self._tool_calls)]
        return message if well_formed(message) else None

    def _read_message(self, body: dict[str, Any]) -> None:
        if self._api == "responses":
            for item in map(_object, _array(body.get("output"))):
                if item.get("type") == "message":
                    parts = map(_object, _array(item.get("content")))
                    self._text += [
                        _string(part.get("text"))
                        for part in parts
                        if part.get("type") == "output_text"
                    ]
        else:
            if self._api == "openai":
                choices = _array(body.get("choices"))
                message = _object(_object(choices[0]).get("message")) if choices else {}
            else:
                content = body.get("content") or []
                message = next(iter(from_anthropic({"role": "assistant", "content": content})), {})
            self._text = [_string(message.get("content"))]
            self._tool_calls = dict(enumerate(_array(message.get("tool_calls"))))
        self.complete = True

    def _parse_events(self) -> None:
        buffer = self._buffer.replace(b"\r\n", b"\n")
        *events, rest = buffer.split(b"\n\n")
        self._buffer = bytearray(rest)
        for event in events:
            for line in event.split(b"\n"):
                if line.startswith(b"data:"):
                    self._on_data(bytes(line[5:].strip()))

    def _on_data(self, data: bytes) -> None:
        if b'"usage"' in data and (usage := last_usage(data)):
            self.usage.update(usage)
        if MAY_END.search(data) and (reason := _event_reason(data)):
            self.finish_reason = reason
        if self._api is None:
            return
        if data == b"[DONE]":
            self.complete = True
            return
        try:
            event = orjson.loads(data)
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        if self._api == "openai":
            for choice in map(_object, _array(event.get("choices"))):
                delta = _object(choice.get("delta"))
                if text := _string(delta.get("content")):
                    self._text.append(text)
                for call in map(_object, _array(delta.get("tool_calls"))):
                    self._merge_tool_call(call)
                if choice.get("finish_reason"):
                    self.complete = True
        elif event.get("type") == "response.output_text.delta":
            self._text.append(_string(event.get("delta")))
        elif event.get("type") == "response.completed":
            self.complete = True
        elif event.get("type") == "content_block_start":
            block = _object(event.get("content_block"))
            if block.get("type") == "tool_use":
                self._tool_calls[_index(event.get("index"))] = {
                    "id": block.get("id"),  # checked with the whole answer
                    "type": "function",
                    "function": {"name": block.get("name"), "arguments": ""},
                }
        elif event.get("type") == "content_block_delta":
            delta = _object(event.get("delta"))
            if delta.get("type") == "text_delta":
                self._text.append(_string(delta.get("text")))
            elif delta.get("type") == "input_json_delta":
                started = self._tool_calls.get(_index(event.get("index")))
                if started is not None:
                    started["function"]["arguments"] += _string(delta.get("partial_json"))
        elif event.get("type") == "message_stop":
            self.complete = True

    def _merge_tool_call(self, call: dict[str, Any]) -> None:
        """OpenAI streams a tool call as fragments sharing an index."""
        entry = self._tool_calls.setdefault(
            _index(call.get("index")),
            {"type": "function", "function": {"name": "", "arguments": ""}},
        )
        if call.get("id"):
            entry["id"] = call["id"]
        function = _object(call.get("function"))
        entry["function"]["name"] += _string(function.get("name"))
        entry["function"]["arguments"] += _string(function.get("arguments"))


# The answer's parts, as the reading above expects them; anything else reads as empty.
def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _array(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _string(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _index(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _event_reason(data: bytes) -> str | None:
    try:
        event = orjson.loads(data)
    except ValueError:
        return None
    return reason_in(event) if isinstance(event, dict) else None


def _as_cost(header: bytes | None) -> float | None:
    try:
        cost = float(header) if header else None
    except ValueError:  # LiteLLM writes "None" when it could not price the call
        return None
    return cost if cost is not None and math.isfinite(cost) else None


def _json_object(data: bytes | bytearray) -> dict[str, Any] | None:
    """The decoded answer, or None when it is not a JSON object."""
    try:
        body = orjson.loads(data)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
