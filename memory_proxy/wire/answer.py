"""An answer read once, for everyone, from the bytes as they stream past, holding none
up: the assistant's message for memory (assembled by the request's adapter, and only
when memory wants it), the token counts, cost and finish reason for accounting.

Chunks are fed after they were sent to the client. SSE streams are split event by event,
however the bytes were split. Token counts are read from the last `"usage"` object of a
JSON answer or of each SSE event that has one, without decoding the rest: a large answer
whose message nobody needs is never parsed whole (only its last USAGE_TAIL_BYTES are
kept). A gzipped answer (LiteLLM gzips whole JSON answers of 500 bytes or more for
clients that accept it) is read through a decompressor, bounded like the rest; the
client still gets the bytes as sent.

Accounting reads the answer of every call, whatever its path (LiteLLM's pass-through
routes, an error in another API's words), so token counts and finish reasons are read in
any format's words: every adapter's, the first that understands them.

When only the memory index wants the message (a request naming no session), the reader
is given the wire format instead of a parser: it reads usage alone and keeps the answer's
bytes (KEPT_BYTES at most; past that it reads the message itself, as before), and
wire/kept.py reads the message from them where the memory is made (the index process, on
another core): exactly as this reader would have.

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
from memory_proxy.records.messages import Message
from memory_proxy.wire.base import MAX_REASON_LENGTH, AnswerParser, ChatFormat
from memory_proxy.wire.registry import WIRE_FORMATS

logger = logging.getLogger("memory_proxy.capture")

MAX_CAPTURED_BYTES = 8 * 1024 * 1024
# Usage comes last in the JSON answers of OpenAI, Anthropic and LiteLLM: without the text,
# only this much of the end of a JSON answer is kept.
USAGE_TAIL_BYTES = 64 * 1024
# An answer's bytes kept for its message to be read elsewhere: a longer one (a stream of
# a thousand events or more) has its message read here, as before.
KEPT_BYTES = 256 * 1024
COST_HEADER = b"x-litellm-response-cost"
_FORMATS = tuple(dict.fromkeys(WIRE_FORMATS.values()))
# Each format's readers, once each (chat completions read their answers as the legacy
# text completions do), bound once: they run on every answer.
_REASON_READERS = tuple({type(f).finish_reason: f.finish_reason for f in _FORMATS}.values())
_COUNT_READERS = tuple({type(f).token_counts: f.token_counts for f in _FORMATS}.values())
STREAM_END = b"[DONE]"  # the data of the last event of OpenAI's streams
# A stream's last event in any format's words (but OpenAI's STREAM_END).
_FINAL_EVENT = re.compile(
    b"|".join(dict.fromkeys(f.final_event for f in _FORMATS if f.final_event))
)
# An SSE event that may say why the answer ended, or end it, found without decoding it.
MAY_END = re.compile(
    b"|".join(
        dict.fromkeys(
            [*(f.end_marker for f in _FORMATS), _FINAL_EVENT.pattern, re.escape(STREAM_END)]
        )
    )
)
# The first reason in the kept end of a JSON answer whose beginning may be gone.
_LATE_REASON = re.compile(
    rb'"(?:'
    + b"|".join(dict.fromkeys(f.reason_key for f in _FORMATS if f.reason_key))
    + rb')"\s*:\s*"([A-Za-z0-9_.-]{1,%d})"' % MAX_REASON_LENGTH
)
# Inside a JSON string every quote is escaped, so this can only be a key.
_USAGE_KEY = re.compile(rb'"usage"\s*:\s*')
_DECODER = json.JSONDecoder()


def finish_reason(answer: dict[str, Any]) -> str | None:
    """Why the answer ended, from a whole JSON answer or one decoded SSE event, in any
    format's words; None when it does not say."""
    for read in _REASON_READERS:
        if reason := read(answer):
            return reason
    return None


@dataclass
class TokenUsage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    def update(self, usage: dict[str, Any]) -> None:
        """Later reports win, field by field: Anthropic streams the prompt's count first
        and the completion's last."""
        for read in _COUNT_READERS:
            if (counts := read(usage)) is not None:
                prompt, completion = counts
                if isinstance(prompt, int):
                    self.prompt_tokens = prompt
                if isinstance(completion, int):
                    self.completion_tokens = completion
                return


# A kept answer: its chat format's name, "json" or "sse", its bytes (decompressed). A plain
# tuple: it travels to the index process with marshal, which takes no NamedTuple.
KeptAnswer = tuple[str, str, bytes]


@dataclass(slots=True)  # not frozen: one is built per request, and freezing costs 2x
class Answer:
    """What one answer said: memory takes the message, accounting the rest."""

    message: Message | None  # None: not asked for, an error, or nothing well-formed
    complete: bool  # its final part arrived (an answer cut short is partial)
    usage: TokenUsage
    cost: float | None  # LiteLLM's x-litellm-response-cost
    finish_reason: str | None  # as the answer said; None if it did not
    # The answer's bytes, for wire/kept.py, when the reader kept them rather than read
    # its message (`complete` then tells only whether a stream's final event came).
    kept: KeptAnswer | None = None


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


class AnswerReader:
    """Fed by the forwarder (start, then each chunk); `finish` says what was read.
    `parser` is the request's adapter's, when memory wants the message; without one only
    token counts, cost and finish reason are read; a chat format instead: those, and the
    answer's bytes kept for its message to be read elsewhere (wire/kept.py)."""

    __slots__ = (
        "_buffer",
        "_cost",
        "_ended",
        "_finish_reason",
        "_gunzip",
        "_keep_for",
        "_kept",
        "_mode",
        "_parser",
        "_usage",
    )

    def __init__(self, parser: AnswerParser | ChatFormat | None) -> None:
        self._keep_for: ChatFormat | None = None
        self._parser: AnswerParser | None = None
        if parser is None or isinstance(parser, AnswerParser):
            self._parser = parser
        else:
            self._keep_for = parser
        self._kept = bytearray()  # an SSE answer's bytes (a JSON one's are the buffer)
        self._mode: str | None = None  # "json" | "sse" | None (not read)
        self._buffer = bytearray()
        self._gunzip: zlib._Decompress | None = None
        self._ended = False  # the stream's last event was fed
        self._usage = TokenUsage()
        self._cost: float | None = None
        self._finish_reason: str | None = None

    def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        names = dict(headers)  # names in lower case (the forwarder's); values lowered as read
        self._cost = _as_cost(names.get(COST_HEADER))
        if status != 200:
            return
        encoding = names.get(b"content-encoding", b"identity").lower()
        if encoding == b"gzip":
            self._gunzip = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        elif encoding != b"identity":
            logger.info("%s-encoded answer passed through without capture", encoding.decode())
            return
        content_type = names.get(b"content-type", b"").lower()
        if b"text/event-stream" in content_type:
            self._mode = "sse"
        elif b"json" in content_type:
            self._mode = "json"

    def feed(self, chunk: bytes) -> None:
        if self._mode is None:
            return
        if self._gunzip is not None and not (chunk := self._decompressed(chunk)):
            return
        if (keep_for := self._keep_for) is not None:
            kept = self._kept if self._mode == "sse" else self._buffer
            if len(kept) + len(chunk) > KEPT_BYTES:
                self._read_here(keep_for)
            elif kept is self._kept:
                self._kept += chunk
        if self._skippable(chunk):
            return
        self._buffer += chunk
        if self._mode == "sse":
            try:
                self._parse_events()
            except Exception as exc:
                self._give_up(exc)
                return
        elif self._parser is None and self._keep_for is None:
            del self._buffer[:-USAGE_TAIL_BYTES]
        if len(self._buffer) > MAX_CAPTURED_BYTES:
            self._mode = None  # too large to remember; the client still gets every byte
            self._buffer.clear()

    @classmethod
    def resumed(cls, parser: AnswerParser, mode: str) -> AnswerReader:
        """A reader of an answer whose start was read already (its mode known): for bytes
        kept by another reader (wire/kept.py, and _read_here's replay)."""
        reader = cls(parser)
        reader._mode = mode
        return reader

    def _read_here(self, wire: ChatFormat) -> None:
        """Too much to keep: the message read here from now on, with the events kept so
        far read into the parser first (the buffer holds the same unfinished rest)."""
        self._parser = parser = wire.answer_parser()
        self._keep_for = None
        if self._mode == "sse":
            AnswerReader.resumed(parser, "sse").feed(bytes(self._kept))
            self._kept = bytearray()

    def finish(self) -> Answer:
        """The answer ended (or was cut short): what it said."""
        parser = self._parser
        if self._mode == "json" and self._buffer:
            try:
                self._read_json(parser)
            except Exception as exc:
                self._give_up(exc)
        kept = None
        if self._keep_for is not None and self._mode is not None:
            data = self._kept if self._mode == "sse" else self._buffer
            kept = (self._keep_for.name, self._mode, bytes(data))
        self._buffer.clear()
        message = parser.message() if parser is not None and self._mode is not None else None
        return Answer(
            message,
            self._ended or (parser is not None and parser.complete),
            self._usage,
            self._cost,
            self._finish_reason,
            kept,
        )

    @property
    def ended(self) -> bool:
        """The stream's last event was fed, so sent: the client has the whole answer, and
        may hang up before the stream ends (Codex does, on `response.completed`)."""
        return self._ended

    def _read_json(self, parser: AnswerParser | None) -> None:
        buffer = self._buffer
        # The reason is searched for first; the answer is decoded once, only when memory
        # wants its message or the reason was not found (the Responses API puts its
        # status first, where a long answer's kept tail does not reach). Decoded, it
        # gives its usage too, when that is surely what `last_usage` would find.
        found = _LATE_REASON.search(buffer)
        body = json_object(buffer) if found is None or parser is not None else None
        usage = _decoded_usage(body, buffer) if body is not None else None
        if usage := usage or last_usage(buffer):
            self._usage.update(usage)
        if found is not None:
            self._finish_reason = found.group(1).decode()
        elif body is not None:
            self._finish_reason = finish_reason(body)
        if parser is not None and body is not None:
            parser.read_body(body)

    def _decompressed(self, chunk: bytes) -> bytes:
        """At most what may still be read; past that, or on bad data, reading stops."""
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
            self._kept.clear()
        return data

    def _skippable(self, chunk: bytes) -> bool:
        """Whole SSE events without token counts, when only usage is read: nothing here.
        Every `"usage"` a key of null counts none (LiteLLM's chunks but the last say so;
        text cannot spell it, its quotes escaped): each event's last one read as null."""
        return (
            self._parser is None
            and self._mode == "sse"
            and not self._buffer
            and chunk.endswith(b"\n\n")
            and chunk.count(b'"usage"')
            == chunk.count(b'"usage":null') + chunk.count(b'"usage": null')
            and MAY_END.search(chunk) is None
        )

    def _give_up(self, exc: Exception) -> None:
        """A shape the reading did not foresee: read no more of this answer."""
        log_failure(logger, "answer not understood; not captured", exc)
        self._mode = None
        self._buffer.clear()
        self._kept.clear()

    def _parse_events(self) -> None:
        buffer = self._buffer.replace(b"\r\n", b"\n")
        *events, rest = buffer.split(b"\n\n")
        self._buffer = bytearray(rest)
        for event in events:
            for line in event.split(b"\n"):
                if line.startswith(b"data:"):
                    self._on_data(bytes(line[5:].strip()))

    def _on_data(self, data: bytes) -> None:
        if data == STREAM_END:
            self._ended = True
            return
        if b'"usage"' in data and (usage := last_usage(data)):
            self._usage.update(usage)
        if MAY_END.search(data):
            if reason := _event_reason(data):
                self._finish_reason = reason
            if _FINAL_EVENT.search(data):
                self._ended = True
        if self._parser is None:
            return
        try:
            event = orjson.loads(data)
        except ValueError:
            return
        if isinstance(event, dict):
            self._parser.read_event(event)


def _event_reason(data: bytes) -> str | None:
    try:
        event = orjson.loads(data)
    except ValueError:
        return None
    return finish_reason(event) if isinstance(event, dict) else None


def _as_cost(header: bytes | None) -> float | None:
    try:
        cost = float(header) if header else None
    except ValueError:  # LiteLLM writes "None" when it could not price the call
        return None
    return cost if cost is not None and math.isfinite(cost) else None


def _decoded_usage(body: dict[str, Any], data: bytes | bytearray) -> dict[str, Any] | None:
    """The decoded answer's `usage` when it is what `last_usage` would find in its text
    (without decoding it again: 15k instructions, README "That memory turn, cut"): the
    text's only `"usage"`, no escape that could spell another key so, and no number that
    the two decoders read apart (orjson reads integers beyond 64 bits as floats; token
    counts are read from its top level). None: ask `last_usage`."""
    usage = body.get("usage")
    if (
        isinstance(usage, dict)
        and (at := data.find(b'"usage"')) != -1
        and data.rfind(b'"usage"') == at
        and data.find(b"\\u") == -1
        and float not in map(type, usage.values())
    ):
        return usage
    return None


def json_object(data: bytes | bytearray) -> dict[str, Any] | None:
    """The decoded answer, or None when it is not a JSON object."""
    try:
        body = orjson.loads(data)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
