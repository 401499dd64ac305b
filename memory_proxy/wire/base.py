"""The interface every wire format implements (as httpx's transports implement
`BaseTransport`): what differs between the APIs a request may speak. Memory, accounting
and the pipeline ask an adapter; none of them tests which API a request speaks.

`WireFormat` is what accounting needs of an LLM API: the stream's "usage please" option,
why an answer ended and its token counts. `ChatFormat` adds the conversation memory
works on: its turns (to and from the neutral `Message` shape), the human text of a turn,
where a recalled block goes (a user turn, the system prompt), stored history merged into
a request, and the parser that assembles the assistant's message from an answer.

Every method reads a client's or LiteLLM's JSON, whatever its shape: what is not
understood is None (or empty), never an exception.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, cast

from memory_proxy.records.messages import Message, RawMessage, text_of, well_formed

Turn = dict[str, Any]  # a client's message (Responses: an item), as sent
MAX_REASON_LENGTH = 64
# Text parts of a user turn: chat and Anthropic `text`, Responses `input_text`. A turn
# is read alike in any format, so a client that mixes them is understood.
TEXT_PART_TYPES = ("text", "input_text")


class WireFormat(ABC):
    """An LLM API as accounting reads it."""

    name: ClassVar[str]
    # A regular expression over an undecoded SSE event: the event may say why the answer
    # ended. Text cannot match it: inside a JSON string every quote is escaped.
    end_marker: ClassVar[bytes]
    # The key whose string value, late in a JSON answer, says why it ended; None when the
    # format says it first, where the kept tail of a long answer does not reach.
    reason_key: ClassVar[bytes | None] = None
    # A regular expression over an undecoded SSE event: the stream's last one, after which
    # the client has the whole answer (text cannot match it either). None: the format's
    # streams end with OpenAI's `data: [DONE]`, which the reader knows in any stream.
    final_event: ClassVar[bytes | None] = None

    def ask_stream_usage(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        """The payload asking for a stream's token counts, or None to send it unchanged
        (this format's streams carry them unasked)."""
        return None

    @abstractmethod
    def finish_reason(self, answer: dict[str, Any]) -> str | None:
        """Why the answer ended, from a whole JSON answer or one decoded SSE event; None
        when it does not say so in this format's words."""

    @abstractmethod
    def token_counts(self, usage: dict[str, Any]) -> tuple[object, object] | None:
        """(prompt, completion) tokens of a `usage` object in this format's words (each
        any JSON: the reader keeps integers), or None when it is not in them."""


class AnswerParser(ABC):
    """Assembles the assistant's message of one answer (a parser per answer): from the
    whole JSON body, or from the stream's decoded events one at a time."""

    __slots__ = ("complete", "text", "tool_calls")  # one per answer: cheap to make

    def __init__(self) -> None:
        self.text: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}  # by position in the answer
        self.complete = False  # the answer's final part was read

    @abstractmethod
    def read_body(self, body: dict[str, Any]) -> None:
        """A whole JSON answer."""

    @abstractmethod
    def read_event(self, event: dict[str, Any]) -> None:
        """One SSE event."""

    def message(self) -> Message | None:
        """The assistant message in the neutral shape; None when it is not well-formed or
        says nothing (no text, no tool call): that is no assistant turn to remember."""
        text = "".join(self.text)
        if not text.strip() and not self.tool_calls:
            return None
        message: RawMessage = {"role": "assistant", "content": text}
        if not self.tool_calls:
            return cast(Message, message)  # what well_formed says of a role and a text alone
        message["tool_calls"] = [self.tool_calls[i] for i in sorted(self.tool_calls)]
        return message if well_formed(message) else None


class ChatFormat(WireFormat):
    """A chat API: a conversation of turns, as memory reads and extends it."""

    turns_key: ClassVar[str]  # where a request keeps its turns
    text_part: ClassVar[str]  # the type of a text part in a turn's content

    def turns(self, body: dict[str, Any]) -> list[Any] | None:
        """The request's turns, any JSON each; None when there is no list of them."""
        turns = body.get(self.turns_key)
        return turns if isinstance(turns, list) else None

    @abstractmethod
    def conversation(self, body: dict[str, Any]) -> tuple[list[Turn], list[Turn]] | None:
        """(the system turns that stay first, the conversation after them), or None when
        the request is not one memory can extend (its shape not understood, say)."""

    @abstractmethod
    def neutral(self, turns: list[Turn]) -> list[Message]:
        """The turns in the neutral shape, the ill-formed ones left out."""

    @abstractmethod
    def history_turns(self, history: list[Message], conversation: list[Message]) -> list[Turn]:
        """Stored `history` as this format's turns, to go before the client's
        `conversation` (in the neutral shape)."""

    def is_answer(self, turn: Turn) -> bool:
        """An answer the client resends: an assistant turn, or a Responses tool call."""
        return turn.get("role") == "assistant" or turn.get("type") == "function_call"

    def user_text(self, turn: Any) -> str:
        """The text parts of a user turn (tool results and images are not what the human
        wrote); "" for any other turn."""
        if not isinstance(turn, dict) or turn.get("role") != "user":
            return ""
        content = turn.get("content")
        if isinstance(content, str):  # the usual turn: text_of's answer, without its call
            return content
        if isinstance(content, list):
            content = [
                part
                for part in content
                if isinstance(part, dict) and part.get("type") in TEXT_PART_TYPES
            ]
        return text_of(content)

    def final_answer_text(self, turn: Any) -> str | None:
        """The text of an assistant turn that calls no tool (a final answer); None for
        any other turn."""
        if not isinstance(turn, dict) or turn.get("role") != "assistant":
            return None
        content = turn.get("content")
        if turn.get("tool_calls") or _calls_tools(content):
            return None
        return text_of(content)

    def in_user_turn(self, body: dict[str, Any], index: int, block: str) -> dict[str, Any] | None:
        """The body with `block` opening the user turn at `index` (after any tool results,
        which Anthropic wants first); None when that turn is not a user message that can be
        extended. The client's request is copied, never changed."""
        turns = body.get(self.turns_key)
        if isinstance(turns, str):
            return self.in_text_turns(body, index, block)
        if not isinstance(turns, list) or not 0 <= index < len(turns):
            return None
        turn = turns[index]
        if not isinstance(turn, dict) or turn.get("role") != "user":
            return None
        content = turn.get("content")
        if isinstance(content, str):
            content = f"{block}\n\n{content}"
        elif isinstance(content, list):
            at = 0
            while at < len(content) and _is_tool_result(content[at]):
                at += 1
            content = [*content[:at], {"type": self.text_part, "text": block}, *content[at:]]
        else:
            return None
        changed = [*turns[:index], {**turn, "content": content}, *turns[index + 1 :]]
        return {**body, self.turns_key: changed}

    def in_text_turns(self, body: dict[str, Any], index: int, block: str) -> dict[str, Any] | None:
        """in_user_turn for a request whose turns are one string: none by default."""
        return None

    @abstractmethod
    def in_system_prompt(self, body: dict[str, Any], block: str) -> dict[str, Any] | None:
        """The body with `block` at the end of its system prompt (or as one); None when
        the shape is not understood."""

    @abstractmethod
    def answer_parser(self) -> AnswerParser:
        """A parser for one answer in this format."""


def appended(prompt: Any, block: str) -> str | None:
    """A system prompt's text with `block` after it (the block alone when there is none);
    None when the prompt is not text."""
    if prompt is None:
        return block
    return f"{prompt}\n\n{block}" if isinstance(prompt, str) else None


def reason_text(value: Any) -> str | None:
    """A finish reason as kept: a non-empty string, bounded."""
    return value[:MAX_REASON_LENGTH] if isinstance(value, str) and value else None


def _calls_tools(content: Any) -> bool:
    """An Anthropic assistant message with `tool_use` blocks is not a final answer."""
    return isinstance(content, list) and any(
        isinstance(block, dict) and block.get("type") == "tool_use" for block in content
    )


def _is_tool_result(part: Any) -> bool:
    return isinstance(part, dict) and part.get("type") == "tool_result"


# An answer's parts as the parsers expect them; anything else reads as empty.
def as_object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def as_index(value: Any) -> int:
    return value if isinstance(value, int) else 0
