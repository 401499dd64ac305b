"""Every final answer the proxy relays becomes one long-term memory: the human's question
and the answer's text, trimmed, kept per (user id, project). Written off the request path
in batches; a failing index loses memories, never a request.

Recalled blocks are stripped first: memory that feeds on itself (recalling what it
recalled, each time a little more) is a known failure of other memory plugins.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable

from memory_proxy.memory.question import MAX_SCANNED_CHARS, without_recalled
from memory_proxy.records.memory import MemoryRecord, memory_id
from memory_proxy.stores.base import RecallBackend
from memory_proxy.stores.batch_writer import BatchWriter

logger = logging.getLogger("memory_proxy.memory")

MAX_QUESTION_CHARS = 1000
MAX_MEMORY_CHARS = 2000
RECENT_IDS = 4096  # memories known to be stored already: not queued again


def exchange_text(question: str, answer: str) -> str:
    """The memory's text: what was asked and answered, trimmed."""
    question = without_recalled(question).strip()[:MAX_QUESTION_CHARS]
    answer = without_recalled(answer[:MAX_SCANNED_CHARS]).strip()
    return f"User: {question}\nAssistant: {answer}"[:MAX_MEMORY_CHARS]


class MemoryIndexer:
    def __init__(self, backend: RecallBackend, on_drop: Callable[[int], None]) -> None:
        self._writer = BatchWriter(backend.add, "memory", "the memory index", logger, on_drop)
        self._recent: collections.OrderedDict[str, None] = collections.OrderedDict()

    def remember(
        self,
        *,
        user_id: str,
        project: str,
        session_id: str | None,
        client: str,
        model: str | None,
        question: str,
        answer: str,
    ) -> None:
        """Queue one exchange; the same text in the same project is stored once."""
        text = exchange_text(question, answer)
        record_id = memory_id(user_id, project, text)
        if record_id in self._recent:
            self._recent.move_to_end(record_id)
            return
        self._recent[record_id] = None
        if len(self._recent) > RECENT_IDS:
            self._recent.popitem(last=False)
        record = MemoryRecord(
            record_id, user_id, project, session_id, client, model, time.time(), text
        )
        self._writer.put(record)

    def start(self) -> None:
        self._writer.start()

    async def aclose(self) -> None:
        """Store what is queued (the backend is closed by its owner)."""
        await self._writer.aclose()
