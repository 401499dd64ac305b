"""A kept answer read where its memory is made (the index process): a request naming no
session has its answer's bytes kept by the event loop's reader (wire/answer.py), which
reads only what accounting wants, and its message read here, off the loop, with its
format's parser, exactly as that reader would have read it with the parser."""

from __future__ import annotations

from typing import Any

from memory_proxy.records.messages import Message
from memory_proxy.wire.answer import AnswerReader, KeptAnswer, json_object
from memory_proxy.wire.registry import CHAT_FORMATS


def read_kept(kept: KeptAnswer | list[Any] | tuple[Any, ...]) -> tuple[Message | None, bool]:
    """(the message, whether the answer is complete) of a kept answer, read with its
    format's parser as the reader that kept its bytes would have read them: a JSON one
    decoded whole (its usage, read already, left alone), a stream fed to a reader at once
    (SSE events are split alike however the bytes came)."""
    wire, mode, data = kept
    parser = CHAT_FORMATS[wire].answer_parser()
    if mode == "json":
        if (body := json_object(data)) is not None:
            parser.read_body(body)
        return parser.message(), parser.complete
    reader = AnswerReader.resumed(parser, mode)
    reader.feed(data)
    answer = reader.finish()
    return answer.message, answer.complete
