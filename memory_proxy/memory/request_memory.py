"""Everything memory does around one chat request: before it, the session's stored
history and the recalled memories go in (when the request may read memory); after it,
the exchange is stored in the session and indexed for recall (when it may write).

Each part degrades on its own: a failing store, index or recall backend costs that part,
never the request.

A private model's exchanges (records.memory.Privacy) are stored and indexed marked so, and
put back only into requests that go to private models alone: no other request gets them
as session history or as recalled memories.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from memory_proxy.config.recall import RecallSettings
from memory_proxy.memory.conversation import ConversationMemory, Turn
from memory_proxy.memory.embeddings import SemanticSearch
from memory_proxy.memory.indexing import ExchangeIndexer, MemoryIndexer, answer_text
from memory_proxy.memory.placed_blocks import ConversationBlocks
from memory_proxy.memory.question import HumanTurn, last_human_turn
from memory_proxy.memory.recall import Recall
from memory_proxy.memory.redaction import Redactor
from memory_proxy.records.memory import Privacy
from memory_proxy.stores.base import RecallBackend
from memory_proxy.wire.answer import Answer, KeptAnswer
from memory_proxy.wire.base import AnswerParser, ChatFormat

logger = logging.getLogger("memory_proxy.memory")


class MemoryScope(NamedTuple):
    """Whose memory one request uses, and what it may do with it. Immutable; a NamedTuple,
    as one is built per request (a frozen dataclass sets each field through
    object.__setattr__)."""

    user_id: str
    session_id: str | None
    project: str
    client: str
    model: str | None
    reads: bool
    writes: bool
    session_memory: bool  # the session's history is kept (memory on, a session id known)
    privacy: Privacy = "hosted"  # where the request may go, so what memory may put in


# The header of a request that recalled nothing (most): built once.
_NOTHING_RECALLED = (b"x-memory-recalled", b"0")


@dataclass(slots=True)  # one per request: slots make its nine fields cheaper to set
class MemoryTurn:
    """One request's part in memory, from before it is forwarded to after its answer."""

    wire: ChatFormat  # the API the request speaks
    scope: MemoryScope
    payload: dict[str, Any]  # the client's request, as sent
    body: dict[str, Any]  # what goes upstream
    question: HumanTurn | None = None  # the payload's last human turn (for recall)
    session_turn: Turn | None = None
    injected: int = 0  # stored history messages put in
    recalled: int = 0  # memories recalled
    recalled_tokens: int | None = None  # their block's tokens; None: no question searched

    def answer_parser(self) -> AnswerParser | ChatFormat | None:
        """What reads the answer for memory (wire/answer.py's AnswerReader): a parser of
        its message for the session's history; the wire format when only the index wants
        it (the answer's bytes kept and read where its memory is made, off the event
        loop); None when memory keeps nothing of it (only usage is read then)."""
        if not self.scope.writes:
            return None
        if self.session_turn is not None:
            return self.wire.answer_parser()
        return self.wire if self.question is not None else None  # no question: no memory

    def answer_headers(self) -> list[tuple[bytes, bytes]]:
        """What memory did, told to the client: a count and ids (validated), no text."""
        recalled, scope = self.recalled, self.scope
        headers = [(b"x-memory-recalled", b"%d" % recalled) if recalled else _NOTHING_RECALLED]
        if scope.project:
            headers.append((b"x-memory-project", scope.project.encode()))
        if scope.session_id:
            headers.append((b"x-memory-session", scope.session_id.encode()))
        return headers


class RequestMemory:
    """Session memory always; recall and indexing when there is a recall `backend`."""

    def __init__(
        self,
        conversations: ConversationMemory,
        backend: RecallBackend | None,
        settings: RecallSettings,
        *,
        on_recall_timeout: Callable[[], None],
        on_recall_busy: Callable[[], None],
        on_failure: Callable[[], None],
        on_memories_dropped: Callable[[int], None],
        redactor: Redactor | None = None,
        semantic: SemanticSearch | None = None,
        on_semantic_late: Callable[[], None] = lambda: None,
        placed: ConversationBlocks | None = None,
        indexer: ExchangeIndexer | None = None,
    ) -> None:
        """`semantic` recalls by meaning too (recall.embedding_model); `on_failure`
        counts failed searches, `on_recall_busy` searches skipped because the backend
        was busy, `on_memories_dropped` lost memories; `redactor` keeps secrets
        out of the index (the conversations have their own); `placed` remembers where
        recalled blocks went (placed_blocks.py; in this process by default); `indexer`
        writes the exchanges into `backend` (by default here, index_process.py's from a
        process of its own)."""
        self.conversations = conversations
        self.recall = None
        self.indexer: ExchangeIndexer | None = None
        if backend is not None:
            redact = (redactor or Redactor(())).text
            self.indexer = indexer or MemoryIndexer(backend, on_memories_dropped, redact)
            self.recall = Recall(
                backend,
                settings,
                on_timeout=on_recall_timeout,
                on_failure=on_failure,
                memory_text=self.indexer.memory_text,
                on_busy=on_recall_busy,
                semantic=semantic,
                on_semantic_late=on_semantic_late,
                placed=placed,
            )

    async def begin(
        self,
        wire: ChatFormat,
        payload: dict[str, Any],
        outgoing: dict[str, Any],
        scope: MemoryScope,
    ) -> MemoryTurn | None:
        """The request's memory turn, with the body to forward; None when memory has
        nothing to do with it."""
        if not (scope.reads or scope.writes):
            return None
        # The question is for recall and the index alone: not looked for without them.
        question = last_human_turn(wire, payload) if self.indexer is not None else None
        turn = MemoryTurn(wire, scope, payload, outgoing, question)
        if scope.session_memory and scope.session_id is not None:
            session_turn = await self.conversations.begin(
                wire, scope.user_id, scope.session_id, outgoing, scope.privacy
            )
            if session_turn is not None:
                turn.session_turn = session_turn
                if scope.reads and session_turn.injected:
                    turn.body, turn.injected = session_turn.body, session_turn.injected
        recall = self.recall
        if scope.reads and recall is not None:
            if recall.idle(turn.question, scope.session_id, turn.injected > 0):
                return turn  # as `apply` would leave it, without its coroutine and outcome
            outcome = await recall.apply(
                wire,
                payload,
                turn.body,
                turn.question,
                user_id=scope.user_id,
                project=scope.project,
                session_id=scope.session_id,
                history_injected=turn.injected > 0,
                privacy=scope.privacy,
            )
            if outcome.body is not None:
                turn.body, turn.recalled = outcome.body, outcome.recalled
            turn.recalled_tokens = outcome.tokens
        return turn

    def finish(self, turn: MemoryTurn, answer: Answer) -> None:
        """Store and index the exchange in the background (the client has every byte).

        A complete answer is one whose final event reached the client, even if it left
        before the stream's end (Codex does), so only an incomplete one is partial.
        """
        scope = turn.scope
        if not scope.writes:
            return
        if turn.session_turn is not None:
            self.conversations.finish(turn.session_turn, answer)
        question = turn.question
        if self.indexer is None or question is None:
            return
        text: str | KeptAnswer | None = answer.kept  # read where the memory is made
        if text is None and (not answer.complete or (text := answer_text(answer.message)) is None):
            return  # an answer cut short, or one that only calls tools, is not a memory
        self.indexer.remember(
            user_id=scope.user_id,
            project=scope.project,
            session_id=scope.session_id,
            client=scope.client,
            model=scope.model,
            question=question.text,
            answer=text,
            private=scope.privacy != "hosted",
        )

    def start(self) -> None:
        self.conversations.start_purging()
        if self.indexer is not None:
            self.indexer.start()

    async def aclose(self) -> None:
        """Queued memories stored, then the session store closed (the recall backend is
        closed by its owner, after this)."""
        try:
            if self.indexer is not None:
                await self.indexer.aclose()
        finally:
            try:
                await self.conversations.aclose()
            finally:
                if self.recall is not None:
                    await self.recall.aclose()
