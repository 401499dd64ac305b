"""`<private>…</private>`: the model gets it, memory never keeps it, the rest of the
exchange is kept."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from hypothesis import given
from hypothesis import strategies as st

from memory_proxy.config import MemorySettings
from memory_proxy.memory.conversation import ConversationMemory, _without_recalled
from memory_proxy.memory.private_text import without_private
from tests.conftest import ProxyFactory
from tests.fake_upstream import FakeUpstream
from tests.support import wait_until

HIDDEN = "the vault passphrase is heron-17-blue"


def test_tags_and_what_they_hold_become_one_marker() -> None:
    assert without_private(f"log in <private>{HIDDEN}</private> now") == "log in [private] now"
    assert without_private(f"a <PRIVATE>\n{HIDDEN}\n</Private > b") == "a [private] b"
    assert without_private(f"a <private>{HIDDEN}") == "a [private]"  # unclosed: the rest
    nested = f"a <private>x <private>{HIDDEN}</private> y</private> b"
    assert without_private(nested) == "a [private] b"
    assert without_private("a </private> b") == "a  b"
    assert without_private("no tags <b>here</b>") == "no tags <b>here</b>"


TAG_CASES = st.sampled_from(["<private>", "<PRIVATE>", "< Private >", "<pRiVaTe>"])
CLOSE_CASES = st.sampled_from(["</private>", "</PRIVATE>", "< / private >", ""])
PUBLIC = st.text(st.characters(blacklist_characters="<"), max_size=30)


@given(st.lists(st.tuples(PUBLIC, TAG_CASES, st.text(max_size=30), CLOSE_CASES), max_size=5))
def test_no_private_text_is_ever_left(parts: list[tuple[str, str, str, str]]) -> None:
    sentinels = [f"SENTINEL{index}X" for index in range(len(parts))]
    text = "".join(
        f"{public}{open_tag}{hidden}{sentinel}{hidden}{close_tag}"
        for (public, open_tag, hidden, close_tag), sentinel in zip(parts, sentinels, strict=True)
    )
    kept = without_private(text)
    assert not any(sentinel in kept for sentinel in sentinels)
    assert without_private(kept) == kept


def test_the_model_gets_private_text_and_memory_keeps_the_rest_without_it(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory, tmp_path: Path
) -> None:
    upstream, url = fake_upstream
    upstream.reply_text = "Logged in to staging."
    said = f"Log in to staging <private>{HIDDEN}</private> and check the <Private>\ncron jobs"
    headers = {"x-memory-user-id": "alice", "x-memory-project": "shop", "x-session-id": "s1"}
    with run_proxy(url, memory=MemorySettings(sqlite_path=tmp_path / "m.sqlite3")) as proxy:
        body = {"model": "m", "messages": [{"role": "user", "content": said}]}
        assert httpx.post(f"{proxy}/v1/chat/completions", json=body, headers=headers).is_success
        assert json.loads(upstream.requests[0].body)["messages"][-1]["content"] == said

        def kept() -> tuple[list[str], list[str]]:
            session = httpx.get(f"{proxy}/v1/sessions/s1", headers=headers).json()
            found = httpx.get(f"{proxy}/v1/memories", headers=headers).json()["data"]
            return [m["content"] for m in session["messages"]], [m["text"] for m in found]

        wait_until(lambda: kept()[1] != [])
        messages, memories = kept()
    assert messages == ["Log in to staging [private] and check the [private]", upstream.reply_text]
    assert memories == [
        "User: Log in to staging [private] and check the [private]\n"
        "Assistant: Logged in to staging."
    ]


_PIECES = st.sampled_from(["<private>", "</private>", "< Private >", "<", "x", " ", "<recalled"])


@given(
    content=st.lists(st.one_of(_PIECES, st.text(max_size=6)), max_size=8).map("".join),
    role=st.sampled_from(["user", "assistant", "tool"]),
    private=st.booleans(),
)
def test_what_a_conversation_keeps_of_a_message_is_as_before(
    content: str, role: str, private: bool
) -> None:
    """`_kept` copies a user's message only when its private text changed it: what it keeps
    is what a copy with `without_private`'s text always was."""
    message = {"role": role, "content": content}
    before = _without_recalled(message)  # type: ignore[arg-type]
    if role == "user":
        before = {**before, "content": without_private(before["content"])}
    if private:
        before = {**before, "private": True}
    kept = ConversationMemory._kept(None, message, private)  # type: ignore[arg-type]
    assert kept == before
    assert message == {"role": role, "content": content}  # the client's own left as it was
