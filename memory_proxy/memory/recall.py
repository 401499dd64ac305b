"""Recall: each new human question gets the best memories of its user and project from
other sessions, as one block, within a token budget and a time budget.

Only a new question is searched (the request's last message is the human's); in an
agent's tool loop nothing is. Prompt caching stays intact: the block goes with the user
turn it was recalled for (`recall.placement: user`), and the conversation's later
requests, which resend that turn without it, get the same block put back at the same
turn, so the prefix the provider cached is byte for byte the same. The blocks placed are
remembered per conversation (placed_blocks.py): in the process, or in the store every
process shares.

A slow or failing backend never costs a request more than `recall.timeout_ms`: past it
the request goes on without, and the miss is counted; the search is cancelled, so that
the backend drops it. A backend too busy to answer in time says so at once (SearchBusy):
the request goes on without waiting, and the skip is counted.

A private model's memories go only into requests to private models alone (the backend
leaves them out of every other search), and so do the blocks that held one: a block put
back into a later request of the conversation is put back only where it could go first.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import replace
from typing import Any, NamedTuple

from memory_proxy.config.recall import RecallSettings
from memory_proxy.logging_setup import log_failure
from memory_proxy.memory.embeddings import SemanticSearch
from memory_proxy.memory.fusion import CANDIDATES_BY_MEANING, fuse
from memory_proxy.memory.indexing import exchange_text
from memory_proxy.memory.placed_blocks import (
    Conversation,
    ConversationBlocks,
    LocalBlocks,
    Placed,
    text_hash,
)
from memory_proxy.memory.question import HumanTurn, exchanges, human_text_at, search_terms
from memory_proxy.memory.recall_block import recalled_block
from memory_proxy.records.memory import MemoryRecord, Privacy, Recalled, memory_id
from memory_proxy.stores.base import RecallBackend, SearchBusy
from memory_proxy.stores.relevance import covered_share, reaches, stems
from memory_proxy.stores.search_admission import for_recall
from memory_proxy.wire.base import ChatFormat

logger = logging.getLogger("memory_proxy.memory")

CHARS_PER_TOKEN = 4
# Which hits answer the question: those covering `recall.min_score` of its weight and
# this share of the best hit's relevance. None: no block (an off-topic question's hits
# share only a word or two with it).
RELATIVE_CUT_OFF = 0.5
# Once some hit answers, the search's other hits covering this share of `min_score` (0.1
# at the default 0.4) go into the block with it, all in BM25 order: a fact said in
# passing is often worded otherwise than the question, and a question answered at all is
# about these memories' topics. On the long-history benchmark (README "Recall quality";
# chosen on its tune split): evidence 0.284 / 0.335 -> 0.332 / 0.405 (tune / test),
# off-topic blocks the same (no question gets a block it did not have), tokens on-topic
# 352 -> 528. Feedback from the hits (expanding the question with their telling words)
# found no more than this.
FILL_SHARE_OF_MIN_SCORE = 0.25
SUFFIX_BYTES = 6  # a block's tag suffix: 12 hex digits (recall_block.py)


class RecallOutcome(NamedTuple):
    """What recall did to one request; a NamedTuple, as one is built per request."""

    body: dict[str, Any] | None  # the request with the block(s); None: unchanged
    recalled: int  # memories recalled for this request's new question
    tokens: int | None = None  # the new question's block (0: none); None: nothing asked


class Recall:
    def __init__(
        self,
        backend: RecallBackend,
        settings: RecallSettings,
        *,
        on_timeout: Callable[[], None],
        on_failure: Callable[[], None],
        memory_text: Callable[[str, str], str] = exchange_text,
        on_busy: Callable[[], None] = lambda: None,
        semantic: SemanticSearch | None = None,
        on_semantic_late: Callable[[], None] = lambda: None,
        placed: ConversationBlocks | None = None,
    ) -> None:
        """`memory_text` is the indexer's: a memory's text (redacted) from an exchange;
        `semantic` finds memories by meaning too (recall.embedding_model), when its
        answer is back in time (`on_semantic_late` counts those that were not); `placed`
        where the blocks placed are remembered (in this process by default)."""
        self._semantic = semantic
        self._on_semantic_late = on_semantic_late
        self._backend = backend
        self._memory_text = memory_text
        self._settings = settings
        self._system_placement = settings.placement == "system"
        self._max_chars = settings.max_tokens * CHARS_PER_TOKEN
        self._fill_floor = fill_floor(settings)
        self._on_timeout = on_timeout
        self._on_failure = on_failure
        self._on_busy = on_busy
        self._placed = placed or LocalBlocks()

    async def apply(
        self,
        wire: ChatFormat,
        payload: dict[str, Any],
        outgoing: dict[str, Any],
        turn: HumanTurn | None,
        *,
        user_id: str,
        project: str,
        session_id: str | None,
        history_injected: bool,
        privacy: Privacy = "hosted",
    ) -> RecallOutcome:
        """`payload` is the client's request, `outgoing` what goes upstream so far (with
        stored history when `history_injected`), `turn` the payload's last human turn,
        `privacy` where the request may go. A question without topic words ("hi",
        "thanks!") is not searched."""
        conversation = (user_id, session_id or "")
        query, terms = search_terms(turn)
        reads = self._reads(bool(terms), turn, session_id, history_injected)
        if not terms and not reads:
            return RecallOutcome(None, 0)  # nothing asked, nothing to put back: no work
        # Read beside the search: a shared store's round trip adds no wait of its own.
        placed_read = asyncio.ensure_future(self._placed.blocks(conversation)) if reads else None
        found: Placed | None = None
        recalled = 0
        try:
            if terms:
                assert query is not None
                with for_recall():  # held to the budget, the search by meaning's task too
                    hits = await self._search(
                        wire, payload, user_id, project, session_id, query, terms, privacy
                    )
                found, recalled = self._block(hits)
        except BaseException:
            if placed_read is not None:
                placed_read.cancel()
            raise
        placed = await placed_read if placed_read is not None else {}
        reveals = privacy == "private"  # blocks holding private memories may go in
        if self._system_placement:
            outcome = self._in_system(
                wire,
                outgoing,
                conversation,
                placed,
                bool(terms),
                found,
                recalled,
                session_id,
                reveals=reveals,
            )
            return _with_tokens(outcome, bool(terms), found)
        body = outgoing
        dropped: list[int] = []
        if placed and not history_injected:
            fresh = turn.position if found is not None and turn is not None else None
            body, dropped = self._put_back(wire, payload, body, placed, fresh, reveals)
        placed_now: dict[int, Placed] = {}
        if found is not None and turn is not None:
            # the history injected before the turn
            shift = len(wire.turns(body) or ()) - len(wire.turns(payload) or ())
            with_block = wire.in_user_turn(body, turn.position + shift, found.block)
            if with_block is None:
                recalled = 0
            else:
                body = with_block
                if not history_injected:
                    placed_now[turn.position] = replace(found, text_hash=text_hash(turn.text))
        else:
            recalled = 0
        self._placed.change(conversation, dropped, placed_now)
        outcome = RecallOutcome(body if body is not outgoing else None, recalled)
        return _with_tokens(outcome, bool(terms), found)

    def idle(self, turn: HumanTurn | None, session_id: str | None, injected: bool) -> bool:
        """`apply` would surely do nothing (no question, nothing to put back): not awaited
        then; a turn that may ask something is read once, by `apply`."""
        asks = turn is not None and not turn.asks_nothing()
        return not asks and not self._reads(False, turn, session_id, injected)

    def _reads(
        self, asked: bool, turn: HumanTurn | None, session_id: str | None, injected: bool
    ) -> bool:
        """Whether the blocks placed in the conversation are read."""
        if self._system_placement:  # a tool loop gets the session's last again
            return not asked and session_id is not None
        # earlier turns the client resent may have blocks to put back
        return not injected and (turn is None or turn.position > 0)

    def _block(self, hits: list[Recalled]) -> tuple[Placed | None, int]:
        """The hits as a block (its turn's hash left empty), and how many went in."""
        if not hits:
            return None, 0
        suffix = secrets.token_hex(SUFFIX_BYTES)
        made = recalled_block(hits, self._max_chars, suffix)
        if made is None:
            return None, 0
        private = any(hit.record.private for hit in hits)
        ids = tuple(hit.record.id for hit in hits)
        return Placed("", made[0], private, suffix, self._max_chars, ids), made[1]

    async def _search(
        self,
        wire: ChatFormat,
        payload: dict[str, Any],
        user_id: str,
        project: str,
        session_id: str | None,
        query: str,
        terms: list[str],
        privacy: Privacy,
    ) -> list[Recalled]:
        settings = self._settings
        deadline = asyncio.get_running_loop().time() + settings.timeout_ms / 1000
        similar = None
        semantic = self._semantic
        if semantic is not None and semantic.may_embed(privacy):  # beside the word search
            similar = asyncio.create_task(
                semantic.similar(
                    user_id,
                    project,
                    query,
                    limit=CANDIDATES_BY_MEANING,
                    exclude_session=session_id,
                    privacy=privacy,
                )
            )
        lexical_failed = True  # then the search by meaning is dropped too
        try:
            # Asked before the timer is set: a backend too busy refuses at once, at the call.
            searching = self._backend.search(
                user_id,
                project,
                query,
                limit=settings.limit,
                exclude_session=session_id,
                # fused with meaning, a hit below it may still count: kept below
                min_share=settings.min_score if similar is None else 0.0,
                fill_share=self._fill_floor if similar is None else None,
                privacy=privacy,
            )
            async with asyncio.timeout_at(deadline):
                hits = await searching
            lexical_failed = False
        except TimeoutError:
            self._on_timeout()
            logger.info("recall took over %d ms; the request goes on without", settings.timeout_ms)
            return []
        except SearchBusy as exc:
            self._on_busy()
            logger.debug("recall skipped (%s); the request goes on without", exc)
            return []
        except Exception as exc:
            self._on_failure()
            log_failure(logger, "recall failed; the request goes on without", exc)
            return []
        finally:
            if lexical_failed and similar is not None:
                similar.cancel()
        # A backend that weighs nothing (relevance None): every word alike; else not stemmed.
        uniform = dict.fromkeys(stems(terms), 1.0) if any(h.relevance is None for h in hits) else {}
        relevant = [
            (
                hit,
                covered_share(uniform, hit.record.text) if hit.relevance is None else hit.relevance,
            )
            for hit in hits
            if hit.record.user_id == user_id
            and hit.record.project == project
            and (privacy == "private" or not hit.record.private)
        ]
        best = max((relevance for _, relevance in relevant), default=0.0)
        cut_off = max(settings.min_score, RELATIVE_CUT_OFF * best)
        meaning = await self._in_time(similar, deadline) if similar is not None else []
        in_scope = [
            (record, cosine)
            for record, cosine in meaning
            if record.user_id == user_id
            and record.project == project
            and (privacy == "private" or not record.private)
        ]
        if in_scope:
            hits = fuse(relevant, cut_off, in_scope, settings.min_similarity)
        elif any(reaches(relevance, cut_off) for _, relevance in relevant):
            hits = [hit for hit, relevance in relevant if reaches(relevance, self._fill_floor)]
            hits.sort(key=lambda hit: -hit.score)
        else:
            hits = []
        if hits and session_id is None:  # no session to leave out: drop what is in context
            in_context = {
                memory_id(user_id, project, self._memory_text(question, answer))
                for question, answer in exchanges(wire, payload)
            }
            hits = [hit for hit in hits if hit.record.id not in in_context]
        return hits[: settings.limit]

    async def _in_time(
        self, similar: asyncio.Task[list[tuple[MemoryRecord, float]]], deadline: float
    ) -> list[tuple[MemoryRecord, float]]:
        """The memories found by meaning, when they are back by `deadline`; none when
        not, or when their search thread was too busy to finish in time (counted), or
        when finding them failed (logged)."""
        try:
            async with asyncio.timeout_at(deadline):
                return await similar
        except (TimeoutError, SearchBusy):
            self._on_semantic_late()
            logger.debug("recall by meaning was late; recall goes on by words")
        except Exception as exc:
            self._on_failure()
            log_failure(logger, "recall by meaning failed; recall goes on by words", exc)
        return []

    def _put_back(
        self,
        wire: ChatFormat,
        payload: dict[str, Any],
        body: dict[str, Any],
        placed: dict[int, Placed],
        fresh: int | None,
        reveals: bool,
    ) -> tuple[dict[str, Any], list[int]]:
        """The blocks of earlier turns back where they were, for turns the client resent
        unchanged; a turn that changed (history edited, compacted) loses its block, and
        the turn just recalled for (`fresh`) gets its new one only. A block holding a
        private model's memory goes back only when the request `reveals` private ones
        (it is kept for the conversation's next request to a private model). With the
        turns whose block is to be forgotten."""
        dropped = []
        for index, block in sorted(placed.items()):
            if index == fresh or (block.private and not reveals):
                continue
            text = human_text_at(wire, payload, index)
            with_block = (
                wire.in_user_turn(body, index, block.block)
                if text is not None and text_hash(text) == block.text_hash
                else None
            )
            if with_block is None:
                dropped.append(index)
            else:
                body = with_block
        return body, dropped

    def _in_system(
        self,
        wire: ChatFormat,
        outgoing: dict[str, Any],
        conversation: Conversation,
        placed: dict[int, Placed],
        asked: bool,
        found: Placed | None,
        recalled: int,
        session_id: str | None,
        *,
        reveals: bool,
    ) -> RecallOutcome:
        """`placement: system`: a new question's block, or (in the same session) the last
        one again, so that a tool loop keeps one system prompt; a block holding a private
        model's memory only where the request `reveals` private memories."""
        if asked:
            kept = found is not None and session_id is not None
            self._placed.change(conversation, [-1], {-1: found} if kept and found else {})
        elif session_id is not None and (last := placed.get(-1)):
            found, recalled = (last, 0) if reveals or not last.private else (None, 0)
        else:
            found = None
        if found is None:
            return RecallOutcome(None, 0)
        body = wire.in_system_prompt(outgoing, found.block)
        return RecallOutcome(body, recalled if body is not None else 0)

    async def aclose(self) -> None:
        await self._placed.aclose()


def fill_floor(settings: RecallSettings) -> float:
    """The share of the question's weight a hit needs to fill an answered question's block:
    what recall asks the word search for."""
    return FILL_SHARE_OF_MIN_SCORE * settings.min_score


def _with_tokens(outcome: RecallOutcome, asked: bool, found: Placed | None) -> RecallOutcome:
    """`outcome` with its block's tokens (as `recall.max_tokens` counts them) when a
    question was asked: for usage records and the dashboard."""
    if not asked:
        return outcome
    tokens = len(found.block) // CHARS_PER_TOKEN if found is not None and outcome.recalled else 0
    return RecallOutcome(outcome.body, outcome.recalled, tokens)  # _replace() costs 4 times more
