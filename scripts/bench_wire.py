"""The per-request CPU of what the wire adapters do, in process, for each chat API: a
request prepared (the stream's token counts asked for, six stored messages merged in, the
human's question found, a recalled block placed in its turn), and its answer read — JSON
and SSE, with memory keeping the message and for accounting only, on the answers of
scripts/wire_samples.py.

    .venv/bin/python -m scripts.bench_wire [--rounds 7] [--number 2000]

Each figure is CPU time (the process's own, steadier than wall time on a shared machine):
the least and the median over the rounds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import timeit
from collections.abc import Callable, Iterator
from typing import Any

from memory_proxy.memory.injection import ContextLimits, prepare
from memory_proxy.memory.question import last_human_turn
from memory_proxy.wire.answer import AnswerReader
from memory_proxy.wire.base import ChatFormat
from memory_proxy.wire.registry import CHAT, MESSAGES, RESPONSES
from scripts.wire_samples import BLOCK, HEADERS, HISTORY, chat, messages, responses, sse

LIMITS = ContextLimits(20, 8000)
SAMPLES = {CHAT: chat(), MESSAGES: messages(), RESPONSES: responses()}


def prepared(wire: ChatFormat, request: dict[str, Any]) -> Callable[[], None]:
    streamed = {**request, "stream": True}

    def run() -> None:
        wire.ask_stream_usage(streamed)
        done = prepare(wire, request, HISTORY, LIMITS)
        assert done is not None
        turn = last_human_turn(wire, request)
        assert turn is not None
        assert wire.in_user_turn(done.body, turn.position + done.injected, BLOCK) is not None

    return run


def read(wire: ChatFormat | None, kind: str, chunks: list[bytes]) -> Callable[[], None]:
    headers = HEADERS[kind]

    def run() -> None:
        reader = AnswerReader(wire.answer_parser() if wire else None)
        reader.start(200, headers)
        for chunk in chunks:
            reader.feed(chunk)
        answer = reader.finish()
        assert answer.usage.completion_tokens == 40 and answer.finish_reason and answer.cost
        assert (answer.message is not None) == (wire is not None)

    return run


def cases() -> Iterator[tuple[str, Callable[[], None]]]:
    for wire, (request, answer, events) in SAMPLES.items():
        yield f"{wire.name} request", prepared(wire, request)
        for kind, chunks in (("json", [json.dumps(answer).encode()]), ("sse", sse(events))):
            yield f"{wire.name} {kind} answer, memory", read(wire, kind, chunks)
            yield f"{wire.name} {kind} answer, usage only", read(None, kind, chunks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--number", type=int, default=2000)
    args = parser.parse_args()
    for label, run in cases():
        run()
        times = timeit.repeat(run, time.process_time, number=args.number, repeat=args.rounds)
        per_call = [seconds / args.number * 1e6 for seconds in times]
        print(f"{label:32s} {min(per_call):8.2f} µs (median {statistics.median(per_call):8.2f})")


if __name__ == "__main__":
    main()
