"""The human's question in a chat request (its turns read by the request's wire adapter):
what recall searches for and what the index keeps.

Agents wrap what the human typed: Claude Code adds `<system-reminder>` blocks (and, from
2.1, a system-role environment message after the question), the Codex CLI sends
`<environment_context>` and AGENTS.md instructions as user messages, and the proxy's own
recalled block sits in the latest turn. Those are stripped, and so is the user's
`<private>` text (never searched for, never indexed); a user message
left with no text (tool results only, in an agent's tool loop) asks nothing new.

The recalled block is stripped from all that is stored, however its tags are spelled and
until none is left: memory that feeds on itself (recalling what it recalled, each time a
little more) is a known failure of memory plugins.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import Any, NamedTuple

from memory_proxy.memory.markup import (
    GAP,
    GREATER_THAN,
    LESS_THAN,
    NOT_A_BRACKET,
    folded,
    holds_no_tag,
    might_hold,
    tolerant,
)
from memory_proxy.memory.private_text import PRIVATE_MARKER, without_private
from memory_proxy.stores.recall_query import plainly_no_terms, query_terms
from memory_proxy.wire.base import ChatFormat

RECALLED_TAG = "recalled-memories"
# Blocks that clients add to a user turn: not the human's words.
WRAPPER_TAGS = (
    "system-reminder",
    "environment_context",
    "user_instructions",
    "INSTRUCTIONS",
    "command-name",
    "command-message",
    "local-command-stdout",
    "local-command-stderr",
    "local-command-caveat",
)
MAX_SCANNED_CHARS = 32_000  # of one turn's text; the rest is not searched or stored
MAX_QUERY_CHARS = 1000
# A text of stopwords alone is short ("hi", "thanks!", "ok, go on"): longer ones are not
# looked over for it, or a question recall searches would be read whole once more first
# (16 us on 944 characters, where it holds a topic word at once).
NO_TERMS_CHARS = 80
_WRAPPERS = re.compile(r"<(" + "|".join(map(re.escape, WRAPPER_TAGS)) + r")>.*?</\1>\s*", re.DOTALL)
# The recalled block's tags, in a folded view (`markup.py`): the name ends in the block's
# random suffix (an older proxy wrote none). A block ends at a closing tag, or, cut short
# (an answer quoting it, trimmed), at the end of the text; the line breaks that separate
# it from the turn's text go with it.
_NAME = rf"{tolerant(RECALLED_TAG)}(?:{tolerant('-')}(?:{GAP}[0-9a-z]){{1,64}})?"
_END = rf"{GAP}(?:\s{NOT_A_BRACKET}*)?{GREATER_THAN}"
_OPENING = rf"{LESS_THAN}{GAP}{_NAME}{_END}"
_CLOSING = rf"{LESS_THAN}{GAP}/{GAP}{_NAME}{_END}"
_MIGHT_BE_RECALLED = re.compile(tolerant(RECALLED_TAG))
_WORD = re.compile(r"\w\w")
_SPACES = re.compile(r"\s+")


class HumanTurn(NamedTuple):
    """Immutable; a NamedTuple, as one is built per chat request (a frozen dataclass sets
    each field through object.__setattr__: 1.1 us against 0.2)."""

    position: int  # the turn's index in the request's turns
    text: str  # what the human wrote, wrappers stripped; never empty
    latest: bool  # followed by no answer or tool result: a new question

    def asks_nothing(self) -> bool:
        """Surely no question for recall: not the latest turn, or a short ASCII text whose
        words are all stopwords ("hi", "thanks!"), known before its query is made (README
        "That memory turn, cut"). False may still be a question without topic words."""
        if not self.latest:
            return True
        text = self.text
        return len(text) <= NO_TERMS_CHARS and plainly_no_terms(text.replace(PRIVATE_MARKER, " "))


def without_wrappers(text: str) -> str:
    text = without_recalled(text[:MAX_SCANNED_CHARS])
    return _WRAPPERS.sub("", text).strip() if "<" in text else text.strip()


@functools.cache
def _recalled_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(a block, an opening tag): compiled when a text first might hold one, not by every
    process that imports this module (about 10 ms of CPU: the index process, each CLI run)."""
    recalled = rf"{_OPENING}.*?(?:{_CLOSING}(?:\r?\n){{0,2}}|\Z)"
    return re.compile(recalled, re.DOTALL), re.compile(_OPENING)


def without_recalled(text: str) -> str:
    """Text with every recalled block removed, so that none is left: recalled memories
    are never stored back. A block whose removal joins the text around it into a new
    opening tag leaves that tag to be removed, as a block cut short, to the end."""
    if not might_hold(text, _MIGHT_BE_RECALLED):
        return text
    view = folded(text)  # character for character: its places are the text's
    blocks, openings = _recalled_patterns()
    kept = [(0, len(text))]
    for block in blocks.finditer(view):
        kept[-1:] = [(kept[-1][0], block.start()), (block.end(), len(text))]
    if len(kept) == 1:
        return text  # no opening tag: each starts a block, if only a cut-short one
    text = "".join(text[start:end] for start, end in kept)
    opening = openings.search("".join(view[start:end] for start, end in kept))
    return text if opening is None else text[: opening.start()]


def last_human_turn(wire: ChatFormat, body: dict[str, Any]) -> HumanTurn | None:
    """The last user message with human text, or None."""
    turns = wire.turns(body)
    if turns is None:
        return None
    last = len(turns) - 1
    for index in range(last, -1, -1):
        text = _human_text(wire, turns[index])
        if text:  # the last turn is followed by nothing: no slice of what follows needed
            latest = index == last or _only_instructions(turns[index + 1 :])
            # HumanTurn(index, text, latest), without its Python __new__
            return tuple.__new__(HumanTurn, (index, text, latest))
    return None


def _only_instructions(turns: list[Any]) -> bool:
    """Nothing but system or developer messages: the turn before them is still the newest
    question (Claude Code 2.1 sends its environment as a system message after it)."""
    return all(isinstance(t, dict) and t.get("role") in ("system", "developer") for t in turns)


def human_text_at(wire: ChatFormat, body: dict[str, Any], index: int) -> str | None:
    turns = wire.turns(body)
    if turns is None or not 0 <= index < len(turns):
        return None
    return _human_text(wire, turns[index])


def search_query(turn: HumanTurn | None) -> str | None:
    """The recall query: the latest turn's text, bounded; None when there is no new
    question (the last message is no human's, or has no words)."""
    if turn is None or not turn.latest:
        return None
    text = turn.text[: MAX_QUERY_CHARS * 2].replace(PRIVATE_MARKER, " ")  # not a topic
    query = _SPACES.sub(" ", text).strip()[:MAX_QUERY_CHARS]
    return query if _WORD.search(query) else None


def search_terms(turn: HumanTurn | None) -> tuple[str | None, list[str]]:
    """The recall query and its topic words (none: nothing to search for; no query either
    when the turn `asks_nothing`)."""
    if turn is None or turn.asks_nothing():
        return None, []
    query = search_query(turn)
    return query, (query_terms(query) if query else [])


def exchanges(wire: ChatFormat, body: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(question, final answer) pairs the request already carries: a human turn and the
    last assistant text without tool calls before the next human turn."""
    turns = wire.turns(body) or []
    question: str | None = None
    answer: str | None = None
    for turn in turns:
        role = turn.get("role")
        if role == "user" and (text := _human_text(wire, turn)):
            if question and answer:
                yield question, answer
            question, answer = text, None
        elif (final := wire.final_answer_text(turn)) is not None:
            answer = final or answer
    if question and answer:
        yield question, answer


def _human_text(wire: ChatFormat, turn: Any) -> str:
    text = wire.user_text(turn)
    if holds_no_tag(text):
        # No wrapper, no recalled block, no `<private>` span for the functions below to
        # strip (the last human turn of "hi": 17.6k instructions -> 9.2k, README "That
        # memory turn, cut").
        return text[:MAX_SCANNED_CHARS].strip()
    return without_private(without_wrappers(text)) if text else ""
