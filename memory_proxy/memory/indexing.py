"""Every final answer the proxy relays becomes one long-term memory: the human's question
and the answer's text, trimmed, kept per (user id, project). Written off the request path
in batches; a failing index loses memories, never a request.

Recalled blocks are stripped first: memory that feeds on itself (recalling what it
recalled, each time a little more) is a known failure of other memory plugins. Secrets
are redacted (memory/redaction.py) before the text is trimmed, and the trimming cuts at a
space, so no secret is ever cut in two and half of it kept unrecognised.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import time
from collections.abc import Callable
from typing import NamedTuple, Protocol

from memory_proxy.memory.private_text import without_private
from memory_proxy.memory.question import MAX_SCANNED_CHARS, without_recalled
from memory_proxy.records.memory import MemoryRecord, memory_id
from memory_proxy.records.messages import Message
from memory_proxy.stores.base import RecallBackend
from memory_proxy.stores.batch_writer import BatchWriter
from memory_proxy.wire.answer import KeptAnswer
from memory_proxy.wire.kept import read_kept

logger = logging.getLogger("memory_proxy.memory")

MAX_QUESTION_CHARS = 1000
MAX_MEMORY_CHARS = 2000
RECENT_IDS = 4096  # memories known to be stored already: not queued again
RECENT_TEXTS = 512  # exchanges whose memory text is kept, for clients that resend them
# Exchanges made into memories (stripped, redacted, an id) on the event loop in one go:
# a full batch of 2,000 at once held every request for ~14 ms (7 us each), 32 about 0.2 ms.
MEMORIES_PER_TURN = 32


def exchange_text(
    question: str, answer: str, redact: Callable[[str], str] = lambda text: text
) -> str:
    """The memory's text: what was asked and answered, redacted, trimmed."""
    question = _cut_at_space(without_recalled(question).strip(), MAX_QUESTION_CHARS)
    answer = _cut_at_space(without_recalled(answer[:MAX_SCANNED_CHARS]).strip(), MAX_MEMORY_CHARS)
    return redact(f"User: {question}\nAssistant: {answer}")[:MAX_MEMORY_CHARS]


def answer_text(message: Message | None) -> str | None:
    """What a memory keeps of a complete answer's message; None when it is no memory (no
    message, no text, or a call of tools)."""
    if message is None or message.get("tool_calls") or not message.get("content"):
        return None
    return message["content"]


def kept_answer_text(kept: KeptAnswer) -> str | None:
    """answer_text of an answer whose bytes were kept (wire/answer.py), read here: None
    also when it was cut short."""
    message, complete = read_kept(kept)
    return answer_text(message) if complete else None


def recent_memory_texts(redact: Callable[[str], str]) -> Callable[[str, str], str]:
    """`exchange_text` with `redact`, the latest RECENT_TEXTS kept: recall asks for the texts
    of every exchange a request carries (to leave those in context out), and a client that
    resends its conversation asks for them again."""
    return functools.lru_cache(RECENT_TEXTS)(functools.partial(exchange_text, redact=redact))


def note_text(text: str, redact: Callable[[str], str] = lambda text: text) -> str:
    """A note an agent asks memory to keep (the MCP tool `remember`), kept as an exchange
    is: recalled blocks and `<private>` spans left out, secrets redacted, trimmed."""
    kept = without_private(without_recalled(text[:MAX_SCANNED_CHARS])).strip()
    return redact(kept)[:MAX_MEMORY_CHARS].strip()


def _cut_at_space(text: str, limit: int) -> str:
    """At most `limit` characters, ending before a space or line break: a token longer
    than what is left is dropped whole."""
    if len(text) <= limit:
        return text
    return text[: max(text.rfind(" ", 0, limit + 1), text.rfind("\n", 0, limit + 1), 0)]


class Exchange(NamedTuple):
    """An exchange as the request left it; its memory is made when its batch is written.
    A NamedTuple: its fields travel to the index's process as a plain tuple."""

    user_id: str
    project: str
    session_id: str | None
    client: str
    model: str | None
    time: float
    question: str
    answer: str | KeptAnswer  # its text, or its bytes, read when its memory is made
    private: bool


class MemoryMaker:
    """Exchanges made into memories (text stripped, redacted and trimmed, id), the ones
    made lately left out: wherever the index is written, in this process or its own."""

    def __init__(self, redact: Callable[[str], str] = lambda text: text) -> None:
        self._recent: collections.OrderedDict[str, None] = collections.OrderedDict()
        self.memory_text = recent_memory_texts(redact)

    def memory(self, one: Exchange) -> MemoryRecord | None:
        """The exchange's memory, or None when the same one was made lately or its kept
        answer makes none."""
        answer = one.answer if isinstance(one.answer, str) else kept_answer_text(one.answer)
        if answer is None:
            return None
        text = self.memory_text(one.question, answer)
        record_id = memory_id(one.user_id, one.project, text)
        if record_id in self._recent:
            self._recent.move_to_end(record_id)
            return None
        self._recent[record_id] = None
        if len(self._recent) > RECENT_IDS:
            self._recent.popitem(last=False)
        return MemoryRecord.made(
            record_id,
            one.user_id,
            one.project,
            one.session_id,
            one.client,
            one.model,
            one.time,
            text,
            one.private,
        )


class ExchangeIndexer(Protocol):
    """What request memory hands each exchange to: MemoryIndexer here, or IndexProcess
    (index_process.py) for the SQLite file, which writes it from a process of its own."""

    memory_text: Callable[[str, str], str]

    @property
    def dropped(self) -> int: ...

    def remember(
        self,
        *,
        user_id: str,
        project: str,
        session_id: str | None,
        client: str,
        model: str | None,
        question: str,
        answer: str | KeptAnswer,
        private: bool = False,
    ) -> None: ...

    def start(self) -> None: ...

    async def aclose(self) -> None: ...


class MemoryIndexer:
    """Exchanges queued on the request path at the cost of a queue put; their memories
    (MemoryMaker) made when their batch is written, in a quarter-second or a full batch,
    off every request's path, a slice of MEMORIES_PER_TURN at a time between the loop's
    other work."""

    def __init__(
        self,
        backend: RecallBackend,
        on_drop: Callable[[int], None],
        redact: Callable[[str], str] = lambda text: text,
    ) -> None:
        self._add = backend.add
        self._writer = BatchWriter(
            self._store, "memory", "the memory index", logger, on_drop, plural="memories"
        )
        self._maker = MemoryMaker(redact)
        self.memory_text = self._maker.memory_text

    @property
    def dropped(self) -> int:
        return self._writer.dropped

    def remember(
        self,
        *,
        user_id: str,
        project: str,
        session_id: str | None,
        client: str,
        model: str | None,
        question: str,
        answer: str | KeptAnswer,
        private: bool = False,
    ) -> None:
        """Queue one exchange; the same text in the same project is stored once (as it was
        first: a private model's, or not). `private`: told to a private model."""
        self._writer.put(
            Exchange(
                user_id, project, session_id, client, model, time.time(), question, answer, private
            )
        )

    async def _store(self, exchanges: list[Exchange]) -> None:
        records: list[MemoryRecord] = []
        for start in range(0, len(exchanges), MEMORIES_PER_TURN):
            if start:
                await asyncio.sleep(0)  # the requests waiting are served between slices
            made = map(self._maker.memory, exchanges[start : start + MEMORIES_PER_TURN])
            records += [record for record in made if record is not None]
        if records:
            await self._add(records)

    def start(self) -> None:
        self._writer.start()

    async def aclose(self) -> None:
        """Store what is queued (the backend is closed by its owner)."""
        await self._writer.aclose()
