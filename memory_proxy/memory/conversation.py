"""Local conversation memory around one forwarded chat request: load and inject before,
capture and store after. A store that fails or is slow never fails the LLM call: the
request goes on without memory, a warning is logged and the failure counted.

What is stored is what memory may keep: no recalled block, no `<private>` text of the
user's, no secret (redacted); the request itself went upstream as the client sent it.

An exchange with a private model is stored marked private, and a request that may go to a
hosted model gets the session's other turns only: a session that moves from a private
model to a hosted one goes on with the turns the hosted models had."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from memory_proxy.config import MemorySettings
from memory_proxy.logging_setup import ThrottledFailures
from memory_proxy.memory.history_wait import HistoryWaits
from memory_proxy.memory.injection import ContextLimits, prepare
from memory_proxy.memory.markup import holds_no_tag
from memory_proxy.memory.private_text import without_private
from memory_proxy.memory.question import without_recalled
from memory_proxy.memory.redaction import Redactor
from memory_proxy.records.memory import Privacy
from memory_proxy.records.messages import Message
from memory_proxy.stores.base import MemoryStore, StoreOperation
from memory_proxy.wire.answer import Answer
from memory_proxy.wire.base import ChatFormat

logger = logging.getLogger("memory_proxy.memory")

STORE_WAIT_SECONDS = 0.5  # the longest a request waits for its history
SHUTDOWN_GRACE_SECONDS = 5.0  # for the exchanges being stored when the proxy stops
PURGE_INTERVAL_SECONDS = 60.0
SESSION_MESSAGES = "session_messages"  # what memory_proxy_pruned_total counts
EXPIRED_SESSIONS = "expired_sessions"


@dataclass
class Turn:
    """One request's part in a conversation."""

    user_id: str
    session_id: str
    body: dict[str, Any]
    injected: int
    new_turns: list[Message]
    private: bool = False  # the exchange is a private model's (or may be)


class ConversationMemory:
    def __init__(
        self,
        store: MemoryStore,
        settings: MemorySettings,
        on_failure: Callable[[StoreOperation], None] = lambda operation: None,
        redactor: Redactor | None = None,
        on_pruned: Callable[[str, int], None] = lambda what, count: None,
    ) -> None:
        """`on_failure(operation)` counts the store's failures; `on_pruned(what, count)`
        the messages and sessions dropped by bounds."""
        self.store = store
        self._on_failure = on_failure
        self._log_failure = ThrottledFailures(logger)  # a store down fails every request
        self._on_pruned = on_pruned
        self._redactor = redactor or Redactor(())
        self._limits = ContextLimits(settings.max_context_messages, settings.max_context_tokens)
        self._ttl = settings.ttl_seconds
        self._pending: set[asyncio.Future[int]] = set()
        self._purger: asyncio.Task[None] | None = None
        self.shutdown_grace = SHUTDOWN_GRACE_SECONDS
        self.history_wait = HistoryWaits(STORE_WAIT_SECONDS)  # one timer for every load

    async def begin(
        self,
        wire: ChatFormat,
        user_id: str,
        session_id: str,
        body: dict[str, Any],
        privacy: Privacy = "hosted",
    ) -> Turn | None:
        """The request with its history (the private turns only for a request to private
        models alone), or None to forward it without memory."""
        try:
            history = await self.history_wait.load(self.store.load(user_id, session_id))
        except Exception as exc:
            self._failed("load", "load", exc)
            return None
        prepared = prepare(wire, body, history, self._limits, private_turns=privacy == "private")
        if prepared is None:
            return None
        return Turn(
            user_id,
            session_id,
            prepared.body,
            prepared.injected,
            prepared.new_turns,
            private=privacy != "hosted",
        )

    def finish(self, turn: Turn, answer: Answer) -> None:
        """Store the exchange in the background: the client already has every byte."""
        if answer.message is None:
            return  # an error, or nothing we could read: remember nothing
        partial = not answer.complete  # cut short; an answer read to its end is whole
        exchange = (*turn.new_turns, answer.message)
        kept = [self._kept(message, turn.private) for message in exchange]
        messages = self._redactor.messages(kept)  # as one text, as the memory of it is
        # Queued now, so that the session's next request, however soon, reads it; a
        # store's own future is awaited as it is (no task of ours per exchange).
        try:
            appended = self.store.append(turn.user_id, turn.session_id, messages, partial=partial)
        except Exception as exc:  # a store that refuses at once (closed)
            self._failed("append", "store", exc)
            return
        stored = asyncio.ensure_future(appended)
        self._pending.add(stored)
        stored.add_done_callback(self._stored)

    def _kept(self, message: Message, private: bool) -> Message:
        content = message.get("content")
        # Most texts hold no tag: no recalled block and no private text to strip, the
        # searches for them not run (scripts/bench_session_steps: keeping an exchange of
        # two, 13.4k -> 4.6k).
        if not (type(content) is str and holds_no_tag(content)):
            message = _without_recalled(message)
            if message["role"] == "user":
                content = message["content"]
                if (kept := without_private(content)) is not content:  # no private text
                    message = {**message, "content": kept}
        if private:
            message = {**message, "private": True}
        return message

    def _stored(self, stored: asyncio.Future[int]) -> None:
        self._pending.discard(stored)
        if stored.cancelled():
            return
        if (exc := stored.exception()) is not None:
            self._failed("append", "store", exc)
        elif dropped := stored.result():
            self._on_pruned(SESSION_MESSAGES, dropped)

    def _failed(self, operation: StoreOperation, action: str, exc: BaseException) -> None:
        self._on_failure(operation)
        self._log_failure(f"memory store failed to {action}; continuing without memory", exc)

    def start_purging(self) -> None:
        self._purger = asyncio.ensure_future(self._purge_forever())

    async def _purge_forever(self) -> None:
        while True:
            await asyncio.sleep(min(PURGE_INTERVAL_SECONDS, self._ttl))
            try:
                removed = await self.store.purge_expired()
            except Exception as exc:
                self._failed("purge", "purge expired sessions", exc)
                continue
            if removed:
                self._on_pruned(EXPIRED_SESSIONS, removed)
                logger.info("removed %d expired session(s)", removed)

    async def aclose(self) -> None:
        """The exchanges being stored are given `shutdown_grace` seconds, then the store
        closes (a store may finish its queued writes as it does); those still unfinished
        after are given up, counted as failed appends and logged in one line. (One that
        failed was counted when it did.)"""
        if self._purger is not None:
            self._purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purger
        if self._pending:
            await asyncio.wait(self._pending, timeout=self.shutdown_grace)
        await self.store.aclose()
        unfinished = [stored for stored in self._pending if not stored.done()]
        for stored in unfinished:
            stored.cancel()
            self._on_failure("append")
        if unfinished:
            logger.warning(
                "%d exchange(s) not stored: the memory store had not finished them %g s "
                "after the proxy began to stop",
                len(unfinished),
                self.shutdown_grace,
            )


def _without_recalled(message: Message) -> Message:
    """Recalled memories are never stored back, even quoted in an answer."""
    content = message.get("content")
    if isinstance(content, str) and (stripped := without_recalled(content)) != content:
        return {**message, "content": stripped.strip()}
    return message
