"""What memory keeps of a note an agent asks it to remember (the MCP tool `remember`):
never a secret it recognises, never what `<private>` hides, never a recalled block, and
never more than a memory holds."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from memory_proxy.config import Settings
from memory_proxy.memory.indexing import MAX_MEMORY_CHARS, note_text
from memory_proxy.memory.redaction import Redactor
from tests.memory.secret_samples import SEVEN

REDACT = Redactor.configured(Settings()).text
HIDDEN = "qzxhiddenqzx"  # what <private> holds: found nowhere else
# Each recognised alone; an AWS secret key is only with its key id or its name (README).
ALONE = sorted(kind for kind in SEVEN if kind != "aws-secret-key")


@given(
    before=st.text(max_size=1500),
    after=st.text(max_size=1500),
    kind=st.sampled_from(ALONE),
    tag=st.sampled_from(["private", "PRIVATE", " private "]),
)
def test_a_note_keeps_no_secret_and_nothing_private(
    before: str, after: str, kind: str, tag: str
) -> None:
    secret = SEVEN[kind]
    note = f"{before} {secret} <{tag}>{HIDDEN}</{tag}> {after}"
    kept = note_text(note, REDACT)
    assert secret not in kept
    assert HIDDEN not in kept
    assert len(kept) <= MAX_MEMORY_CHARS


def test_a_note_is_kept_as_written_otherwise() -> None:
    assert note_text("  Staging runs on port 5433.\n", REDACT) == "Staging runs on port 5433."
    assert note_text("a <private>b</private> c", REDACT) == "a [private] c"


def test_a_recalled_block_in_a_note_is_not_kept() -> None:
    block = "<recalled-memories-0a1b2c3d4e5f>\nold memory text\n</recalled-memories-0a1b2c3d4e5f>"
    assert note_text(f"{block}\nThe deploy key rotates on Fridays.", REDACT) == (
        "The deploy key rotates on Fridays."
    )
