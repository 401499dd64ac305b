"""Reading the assistant's answer out of the bytes streaming past, without holding any up.

Chunks are fed after they were sent to the client. JSON answers are parsed once complete;
SSE streams are parsed event by event, however the bytes were split, in the OpenAI chat
format (`choices[0].delta.content`), Anthropic's (`content_block_delta` text) and the
OpenAI Responses format (`response.output_text.delta`).
"""

from __future__ import annotations

import json
import logging
from typing import Any

logger = logging.getLogger("memory_proxy.capture")

MAX_CAPTURED_BYTES = 8 * 1024 * 1024


class AnswerCapture:
    def __init__(self, api: str) -> None:
        self._api = api
        self._mode: str | None = None  # "json" | "sse" | None (not captured)
        self._buffer = bytearray()
        self._text: list[str] = []
        self._tool_calls: dict[int, dict[str, Any]] = {}
        self.complete = False

    def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        if status != 200:
            return
        names = {name.lower(): value.lower() for name, value in headers}
        if names.get(b"content-encoding", b"identity") != b"identity":
            logger.info("compressed answer passed through without capture")
            return
        content_type = names.get(b"content-type", b"")
        if b"text/event-stream" in content_type:
            self._mode = "sse"
        elif b"json" in content_type:
            self._mode = "json"

    def feed(self, chunk: bytes) -> None:
        if self._mode is None:
            return
        if len(self._buffer) + len(chunk) > MAX_CAPTURED_BYTES:
            self._mode = None  # too large to remember; the client still gets every byte
            self._buffer.clear()
            return
        self._buffer += chunk
        if self._mode == "sse":
            self._parse_events()

    def answer(self) -> dict[str, Any] | None:
        """The assistant message (neutral shape), or None when nothing was captured."""
        if self._mode == "json":
            self._parse_json()
        if self._mode is None or (not self._text and not self._tool_calls):
            return None
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self._text)}
        if self._tool_calls:
            message["tool_calls"] = [self._tool_calls[i] for i in sorted(self._tool_calls)]
        return message

    def _parse_json(self) -> None:
        try:
            body = json.loads(self._buffer)
        except ValueError:
            return
        if not isinstance(body, dict):
            return
        if self._api == "responses":
            for item in body.get("output") or []:
                if item.get("type") == "message":
                    self._text += [
                        part.get("text", "")
                        for part in item.get("content") or []
                        if part.get("type") == "output_text"
                    ]
        elif self._api == "openai":
            choices = body.get("choices") or [{}]
            message = choices[0].get("message") or {}
            self._text = [message.get("content") or ""]
            for index, call in enumerate(message.get("tool_calls") or []):
                self._tool_calls[index] = call
        else:
            blocks = body.get("content") or []
            self._text = [b.get("text", "") for b in blocks if b.get("type") == "text"]
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
        if data == b"[DONE]":
            self.complete = True
            return
        try:
            event = json.loads(data)
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        if self._api == "openai":
            for choice in event.get("choices") or []:
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    self._text.append(delta["content"])
                for call in delta.get("tool_calls") or []:
                    self._merge_tool_call(call)
                if choice.get("finish_reason"):
                    self.complete = True
        elif event.get("type") == "response.output_text.delta":
            self._text.append(event.get("delta", ""))
        elif event.get("type") == "response.completed":
            self.complete = True
        elif event.get("type") == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta":
                self._text.append(delta.get("text", ""))
        elif event.get("type") == "message_stop":
            self.complete = True

    def _merge_tool_call(self, call: dict[str, Any]) -> None:
        """OpenAI streams a tool call as fragments sharing an index."""
        entry = self._tool_calls.setdefault(
            call.get("index", 0), {"type": "function", "function": {"name": "", "arguments": ""}}
        )
        if call.get("id"):
            entry["id"] = call["id"]
        function = call.get("function") or {}
        entry["function"]["name"] += function.get("name") or ""
        entry["function"]["arguments"] += function.get("arguments") or ""
