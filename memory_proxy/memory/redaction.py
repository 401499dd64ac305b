"""Secrets replaced by markers before anything is kept: a session's messages, a long-term
memory, an export, what goes to Supermemory. Never the request to the user's own
provider: the model still gets what the user sent.

A marker keeps the kind and a token's public prefix, never a character of the secret:
`[secret:openai-key sk-proj-…]`, `postgres://app:[secret:url-password]@db/shop`. Redacting
twice changes nothing, and a text holding no secret comes back as the very same string.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from memory_proxy.memory.secret_rules import BUILTIN_RULES, SecretRule, starts_token
from memory_proxy.records.memory import MemoryRecord, memory_id
from memory_proxy.records.messages import Message, ToolCall

if TYPE_CHECKING:
    from memory_proxy.config import Settings

PROXY_KEY_KIND = "proxy-key"
MIN_EXACT_SECRET = 8  # shorter configured keys would redact ordinary words


def marker(kind: str, lead: str = "") -> str:
    return f"[secret:{kind} {lead}…]" if lead else f"[secret:{kind}]"


class Redaction(NamedTuple):
    """What the settings say of redaction: `memory.redact`, `memory.redact_patterns` (name,
    expression) and the proxy's own keys. Plain values: the index process receives them
    (memory/index_worker.py) without importing the config package."""

    on: bool
    patterns: tuple[tuple[str, re.Pattern[str]], ...]
    secrets: tuple[str, ...]

    @classmethod
    def of(cls, settings: Settings) -> Redaction:
        memory = settings.memory
        return cls(memory.redact, memory.redact_patterns, settings.secrets())


@dataclasses.dataclass(frozen=True)
class _Found:
    start: int
    end: int
    kind: str
    lead: str


class Redactor:
    """`text`, `message` and `record` return what may be kept; `on_redacted(kind)` is
    told of each secret replaced. `extra` are the configured patterns (name, expression),
    `exact` the proxy's own keys, replaced wherever they appear."""

    def __init__(
        self,
        rules: Sequence[SecretRule] = BUILTIN_RULES,
        *,
        extra: Sequence[tuple[str, re.Pattern[str]]] = (),
        exact: Iterable[str] = (),
        on_redacted: Callable[[str], None] = lambda kind: None,
    ) -> None:
        keys = sorted({key for key in exact if len(key) >= MIN_EXACT_SECRET}, key=len, reverse=True)
        own = (
            [SecretRule(PROXY_KEY_KIND, re.compile("|".join(map(re.escape, keys))))] if keys else []
        )
        configured = [SecretRule(name, pattern) for name, pattern in extra]
        self._rules = (*own, *rules, *configured)
        # What _nothing_in searches: the built-in rules and the proxy's own keys over the
        # texts joined, configured patterns (any shape) text by text; `after` rules
        # never on their own.
        joinable = [*own, *(rule for rule in rules if any(rule is b for b in BUILTIN_RULES))]
        self._screen_joined = tuple(rule for rule in joinable if rule.after is None)
        self._screen_each = tuple(
            rule
            for rule in self._rules
            if rule.after is None and not any(rule is r for r in self._screen_joined)
        )
        # The joined searches, bound once (most exchanges hold no secret: every one runs).
        # The plain rules are searched at once: their literal leads asked first with `in`
        # (29 of them) cost more than the 17 searches beyond ~60 characters (5.6 against
        # 3.1 us on 365; 87 against 49 on 4,300). The folded rules' needles are asked
        # through gates, not an `any` per rule (the session bench's exchange screened in
        # 34.5k instructions, not 43.5k).
        self._joined_searches = tuple(
            rule.pattern.search for rule in self._screen_joined if not rule.folded
        )
        self._joined_folded = _gates(rule for rule in self._screen_joined if rule.folded)
        # A text's first look (_may_hold_secrets), bound once, as the joined screen's.
        screened = [rule for rule in self._rules if rule.after is None]
        self._plain_searches = tuple(rule.pattern.search for rule in screened if not rule.folded)
        self._folded_gates = _gates(rule for rule in screened if rule.folded)
        self._on_redacted = on_redacted
        self._beside: frozenset[str] = frozenset()  # kinds found in the rest of the exchange

    @classmethod
    def configured(
        cls, settings: Settings, on_redacted: Callable[[str], None] = lambda kind: None
    ) -> Redactor:
        """As `memory.redact` and `memory.redact_patterns` say."""
        return cls.of(Redaction.of(settings), on_redacted)

    @classmethod
    def of(
        cls, redaction: Redaction, on_redacted: Callable[[str], None] = lambda kind: None
    ) -> Redactor:
        """As `redaction` says; with redaction off, one that changes nothing."""
        if not redaction.on:
            return cls(())
        return cls(extra=redaction.patterns, exact=redaction.secrets, on_redacted=on_redacted)

    def text(self, text: str) -> str:
        found = self._find(text)
        if not found:
            return text
        parts = []
        end = 0
        for secret in found:
            parts += [text[end : secret.start], marker(secret.kind, secret.lead)]
            end = secret.end
            self._on_redacted(secret.kind)
        parts.append(text[end:])
        return "".join(parts)

    def record(self, record: MemoryRecord) -> MemoryRecord:
        """A memory with its text redacted, and its id derived from that text."""
        text = self.text(record.text)
        if text is record.text:
            return record
        new_id = memory_id(record.user_id, record.project, text)
        return dataclasses.replace(record, id=new_id, text=text)

    def message(self, message: Message) -> Message:
        """A stored message's text and tool calls (their JSON arguments), redacted."""
        redacted: Message = {**message, "content": self.text(message["content"])}
        calls = message.get("tool_calls")
        if calls:
            redacted["tool_calls"] = [self._tool_call(call) for call in calls]
        return redacted

    def messages(self, messages: Sequence[Message]) -> list[Message]:
        """An exchange's messages, redacted as one text: a secret recognised only beside
        another (an AWS secret key beside its key id) is replaced in every message when
        the other is in any of them (a model's answer that repeats the secret key alone)."""
        texts = [text for message in messages for text in _texts(message)]
        if self._nothing_in(texts):
            return [{**message} for message in messages]
        needed = {rule.after for rule in self._rules if rule.after is not None}
        beside = frozenset(
            rule.kind
            for rule in self._rules
            if rule.kind in needed
            and any(_found_by(rule, text, text.lower() if rule.folded else None) for text in texts)
        )
        redactor = self
        if beside:
            redactor = copy.copy(self)
            redactor._beside = beside
        return [redactor.message(message) for message in messages]

    def _nothing_in(self, texts: list[str]) -> bool:
        """True when no rule's expression matches anywhere in `texts` (their secrets'
        checks not even asked): most exchanges. The built-in rules and the proxy's own
        keys search all the texts at once, joined by a line break, which no expression
        of theirs needs to see beside a secret (no anchor, and no lookaround that a line
        break would fail): one search per rule, not one per rule and text. A rule that
        only counts beside another (`after`) finds nothing unless that one matches."""
        joined = "\n".join(texts)
        joined_lower = joined.lower()  # as the texts' lower cases joined: a line break
        if len(joined_lower) != len(joined):  # ends a word for a final sigma too
            return False  # offsets of a folded text move: checked text by text
        for search in self._joined_searches:
            if search(joined) is not None:
                return False
        if _gated(self._joined_folded, joined_lower):
            return False
        if self._screen_each:
            lowered = [text.lower() for text in texts]
            for rule in self._screen_each:
                if any(map(rule.pattern.search, lowered if rule.folded else texts)):
                    return False
        return True

    def _tool_call(self, call: ToolCall) -> ToolCall:
        arguments = call["function"]["arguments"]
        kept = self._arguments(arguments)
        if kept is arguments:
            return call
        return {**call, "function": {**call["function"], "arguments": kept}}

    def _arguments(self, arguments: str) -> str:
        """Arguments are JSON: their strings are redacted one by one, so the result is
        JSON still. Text that is not JSON is redacted as text."""
        try:
            value = orjson.loads(arguments)
        except orjson.JSONDecodeError:
            return self.text(arguments)
        redacted = self._json_value(value)
        return arguments if redacted is value else orjson.dumps(redacted).decode()

    def _json_value(self, value: Any) -> Any:
        """`value` itself when nothing in it changed."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            items = [self._json_value(item) for item in value]
            changed = any(new is not old for new, old in zip(items, value, strict=True))
            return items if changed else value
        if isinstance(value, dict):
            fields = {key: self._json_value(item) for key, item in value.items()}
            return fields if any(fields[k] is not value[k] for k in value) else value
        return value

    def _find(self, text: str) -> list[_Found]:
        """The secrets' spans in order, overlapping ones merged (the first names them)."""
        if not self._may_hold_secrets(text):
            return []
        found: list[_Found] = []
        lowered: str | None = None
        for rule in self._rules:
            if (
                rule.after is not None
                and rule.after not in self._beside
                and not any(s.kind == rule.after for s in found)
            ):
                continue
            if rule.folded and lowered is None:
                lowered = text.lower()
            found += _found_by(rule, text, lowered)
        return _merged(found) if found else found

    def _may_hold_secrets(self, text: str) -> bool:
        """False when no rule `_find` would ask finds as much as a candidate: its first
        search, as `_found_by` makes it. A rule that waits for another kind (`after`)
        waits for a candidate of some rule first, unless that kind was found beside."""
        lowered = text.lower()
        if self._beside or len(lowered) != len(text):  # rare: each rule as `_find` asks it
            return any(
                _first_match(rule, text, lowered) is not None
                for rule in self._rules
                if rule.after is None or rule.after in self._beside
            )
        for search in self._plain_searches:
            if search(text) is not None:
                return True
        return _gated(self._folded_gates, lowered)


_Gates = tuple[tuple[str, tuple[Callable[[str], re.Match[str] | None], ...]], ...]


def _gates(rules: Iterable[SecretRule]) -> _Gates:
    """(needle, the searches of the rules it gates), each needle once ("": every text)."""
    gated: dict[str, list[Callable[[str], re.Match[str] | None]]] = {}
    for rule in rules:
        for needle in rule.needles or ("",):
            gated.setdefault(needle, []).append(rule.pattern.search)
    return tuple((needle, tuple(searches)) for needle, searches in gated.items())


def _gated(gates: _Gates, text: str) -> bool:
    """Whether a search whose needle `text` holds finds a candidate in it."""
    for needle, searches in gates:
        if needle in text:
            for search in searches:
                if search(text) is not None:
                    return True
    return False


def _first_match(rule: SecretRule, text: str, lowered: str | None) -> re.Match[str] | None:
    """The first match of `rule`'s expression in `text`, or in `lowered` (its lower case)
    for a folded rule: None for most rules, before anything else is looked up."""
    if not rule.folded:
        return rule.pattern.search(text)
    assert lowered is not None
    if rule.needles and not any(needle in lowered for needle in rule.needles):
        return None
    if len(lowered) == len(text):
        return rule.pattern.search(lowered)
    assert rule.ignoring_case is not None  # a character whose lower case is longer:
    return rule.ignoring_case.search(text)  # offsets would move


def _found_by(rule: SecretRule, text: str, lowered: str | None) -> list[_Found]:
    """`rule`'s secrets in `text`; `lowered` is its lower case, for a folded rule."""
    first = _first_match(rule, text, lowered)
    return [] if first is None else _matches(rule, first, first.string, text)


def _texts(message: Message) -> list[str]:
    """What a stored message says: its text and its tool calls' arguments."""
    calls = message.get("tool_calls")
    if not calls:  # most: a text alone, no generator set up for it
        return [message["content"]]
    return [message["content"], *[call["function"]["arguments"] for call in calls]]


def _matches(rule: SecretRule, first: re.Match[str], searched: str, text: str) -> list[_Found]:
    """`rule`'s secrets in `text`, from `first`, the first match of its expression in
    `searched` (the text, or its lower case). A candidate that is rejected is searched
    again from its next character, so it never hides a secret that starts inside it."""
    found = []
    pattern = first.re
    has_lead, has_secret = "lead" in pattern.groupindex, "secret" in pattern.groupindex
    match: re.Match[str] | None = first
    while match is not None:
        start, end = match.span("secret") if has_secret else match.span()
        lead = text[match.start("lead") : match.end("lead")] if has_lead else ""
        if (
            end == start
            or (rule.token and not starts_token(text, match.start()))
            or (rule.valid is not None and not rule.valid(text[start + len(lead) : end]))
        ):
            match = pattern.search(searched, match.start() + 1)
            continue
        found.append(_Found(start, end, rule.kind, lead))
        match = pattern.search(searched, end)
    return found


def _merged(found: list[_Found]) -> list[_Found]:
    """Sorted by start (at the same start the earlier rule names it, as `found` lists them);
    an overlap is covered whole, never left half visible."""
    order = {id(secret): index for index, secret in enumerate(found)}
    spans = sorted(found, key=lambda s: (s.start, order[id(s)]))
    merged: list[_Found] = []
    for secret in spans:
        if merged and secret.start < merged[-1].end:
            last = merged[-1]
            if secret.end > last.end:
                merged[-1] = _Found(last.start, secret.end, last.kind, last.lead)
        else:
            merged.append(secret)
    return merged
