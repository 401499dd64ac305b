"""A text's first look (Redactor._may_hold_secrets: the plain rules' searches, then the
others' first search) only skips texts in which going through the rules one by one finds
nothing: whatever the text, both ways redact it alike. (An exchange's first look, over
all its texts at once, is test_redaction_screen.py's.)"""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from memory_proxy.memory.redaction import Redactor
from memory_proxy.records.messages import Message
from tests.memory import secret_samples as samples
from tests.memory.test_redaction import ASSIGNED, AWS_WORDS, ORDINARY, SECRETS


class RuleByRule(Redactor):
    """Every text goes through every rule."""

    def _may_hold_secrets(self, text: str) -> bool:
        return True


OWN_KEY = "mp-own-key-0123456789"
PIECES = st.one_of(
    ORDINARY,
    AWS_WORDS,
    SECRETS,
    ASSIGNED.map("".join),
    st.sampled_from([samples.AWS_ACCESS_KEY_ID, OWN_KEY, "Bearer ", "token=", "://u:p@h"]),
    st.text(max_size=20),
)
TEXTS = st.lists(PIECES, max_size=12).map("".join)


# Secrets only a folded rule finds, no plain rule's candidate beside them.
@example("password=Zq8#xT2mPq9LrW3v")
@example("Authorization: Bearer abcdefabcdef1234567")
@example(f"the aws secret is `{samples.AWS_SECRET_ACCESS_KEY}`")
@given(TEXTS)
def test_a_text_is_redacted_as_rule_by_rule(text: str) -> None:
    seen: list[str] = []
    redacted = Redactor(exact=(OWN_KEY,), on_redacted=seen.append).text(text)
    expected: list[str] = []
    assert redacted == RuleByRule(exact=(OWN_KEY,), on_redacted=expected.append).text(text)
    assert seen == expected


@example([samples.AWS_ACCESS_KEY_ID, f"then {samples.AWS_SECRET_ACCESS_KEY} alone"])
@given(st.lists(TEXTS, min_size=1, max_size=4))
def test_an_exchange_is_redacted_as_rule_by_rule(texts: list[str]) -> None:
    """Kinds found beside (an AWS secret key beside its key id in another message)."""
    messages: list[Message] = [{"role": "user", "content": text} for text in texts]
    assert Redactor().messages(messages) == RuleByRule().messages(messages)
