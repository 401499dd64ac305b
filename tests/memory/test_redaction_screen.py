"""Redactor.messages looks at an exchange's texts all at once first, and checks them
one by one only when some rule's expression matches somewhere: the same result as
checking every text, wherever the secrets sit (at a text's very start or end too, where
joining the texts puts them beside another's)."""

from __future__ import annotations

import re
from typing import Any

import orjson
from hypothesis import example, given, settings
from hypothesis import strategies as st

from memory_proxy.memory.redaction import Redactor
from memory_proxy.records.messages import Message
from tests.memory import secret_samples as samples
from tests.memory.test_redaction import (
    AWS_NAMES,
    AWS_SECRET_KEYS,
    AWS_WORDS,
    DELIMITERS,
    SECRETS,
)

PROXY_KEY = "sk-proxy-key-0123456789"
CONFIGURED = [("ticket", re.compile(r"^TICKET-\d+$")), ("build", re.compile(r"build-\d{4}\b"))]


class _EveryText(Redactor):
    """The redactor without its first look: every text checked."""

    def _nothing_in(self, texts: list[str]) -> bool:
        return False


AWS_KEY = "Ab3dEfGh1jKlMn0pQrStUvWxYz0123456789AbCd"
PIECES = st.one_of(
    SECRETS,
    st.tuples(AWS_NAMES, AWS_SECRET_KEYS).map("".join),
    AWS_WORDS,
    AWS_SECRET_KEYS,
    st.sampled_from(DELIMITERS),
    st.text(max_size=12),
    st.sampled_from(
        [
            samples.AWS_ACCESS_KEY_ID,
            "Bearer ",
            "basic ",
            "password=",
            "token: ",
            "postgres://app:",
            "@db/x",
            "TICKET-12",
            "build-2024",
            PROXY_KEY,
            "İ",  # lower case longer than itself
        ]
    ),
)
TEXTS = st.lists(PIECES, max_size=6).map("".join)


def _messages(texts: list[str], arguments: str | None) -> list[Message]:
    messages: list[Message] = [
        {"role": "user" if n % 2 == 0 else "assistant", "content": text}
        for n, text in enumerate(texts)
    ]
    if arguments is not None:
        call: Any = {"id": "c1", "function": {"name": "run", "arguments": arguments}}
        messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
    return messages


@settings(max_examples=400)
@example(texts=["hello", f"aws key {AWS_KEY}"], arguments=None, configured=False)
@example(texts=[f"aws key {AWS_KEY}", "hello"], arguments=None, configured=False)
@example(texts=["x", "TICKET-12"], arguments=None, configured=True)
@example(texts=["ab", "c"], arguments=f"aws secret {AWS_KEY}", configured=False)
@given(
    texts=st.lists(TEXTS, min_size=1, max_size=4),
    arguments=st.one_of(
        st.none(), TEXTS, TEXTS.map(lambda text: orjson.dumps({"cmd": text}).decode())
    ),
    configured=st.booleans(),
)
def test_looking_at_all_texts_first_changes_nothing(
    texts: list[str], arguments: str | None, configured: bool
) -> None:
    options: dict[str, Any] = {"exact": [PROXY_KEY], "extra": CONFIGURED if configured else ()}
    redacted: list[str] = []
    every_text: list[str] = []
    messages = _messages(texts, arguments)
    screened = Redactor(on_redacted=redacted.append, **options).messages(messages)
    checked = _EveryText(on_redacted=every_text.append, **options).messages(messages)
    assert screened == checked
    assert redacted == every_text  # each secret counted alike


def _nothing_in_text_by_text(redactor: Redactor, texts: list[str]) -> bool:
    """The screen as it was written first: each text lowered on its own, the lower cases
    joined, every screened rule asked in turn (the reference for the bound searches)."""
    lowered = [text.lower() for text in texts]
    if any(len(low) != len(text) for low, text in zip(lowered, texts, strict=True)):
        return False
    joined, joined_lower = "\n".join(texts), "\n".join(lowered)
    for rule in redactor._screen_joined:
        if rule.folded and rule.needles and not any(n in joined_lower for n in rule.needles):
            continue
        if rule.pattern.search(joined_lower if rule.folded else joined):
            return False
    return not any(
        any(map(rule.pattern.search, lowered if rule.folded else texts))
        for rule in redactor._screen_each
    )


@settings(max_examples=400)
@example(texts=["ΑΣ", "b"], configured=False)  # a final sigma beside the line break
@example(texts=["x'Σ", "'Σa"], configured=False)
@example(texts=["İ", "x"], configured=False)
@given(
    texts=st.lists(st.one_of(TEXTS, st.text(alphabet="ΣσςΑα'. \nİK", max_size=8)), max_size=4),
    configured=st.booleans(),
)
def test_the_screen_answers_as_text_by_text(texts: list[str], configured: bool) -> None:
    """Lowering the joined texts once, the rules' searches bound once and the folded ones
    gated by their needles, answer as each text lowered and each rule asked did."""
    redactor = Redactor(exact=[PROXY_KEY], extra=CONFIGURED if configured else ())
    assert redactor._nothing_in(texts) == _nothing_in_text_by_text(redactor, texts)
