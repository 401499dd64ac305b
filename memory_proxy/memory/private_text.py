"""`<private>…</private>` in a user's message: the model gets it, memory never keeps it.

The tags and all they hold are replaced by one `[private]` marker, in any case and across
lines; tags nested inside one another count as one span, and a `<private>` never closed
hides the rest of the message. A stray `</private>` is dropped.
"""

from __future__ import annotations

import re

PRIVATE_MARKER = "[private]"
_TAG = re.compile(r"<\s*(/?)\s*private\s*>", re.IGNORECASE)


def without_private(text: str) -> str:
    if "<" not in text or _TAG.search(text) is None:
        return text
    kept: list[str] = []
    depth = 0
    position = 0
    for tag in _TAG.finditer(text):
        closing = tag.group(1) == "/"
        if depth == 0:
            kept.append(text[position : tag.start()])
            if not closing:
                kept.append(PRIVATE_MARKER)
        depth = max(0, depth - 1) if closing else depth + 1
        position = tag.end()
    if depth == 0:
        kept.append(text[position:])
    return "".join(kept)
