"""The README as a new user reads it: a section's fenced blocks, to run its commands and
compare what they print with what it says they print."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def section(title: str) -> str:
    """The text of `## title`, up to the next section of its level."""
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, content without its last line break) of each fenced block, in order."""
    return [(language, body.removesuffix("\n")) for language, body in _FENCE.findall(text)]
